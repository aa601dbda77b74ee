//! Store tests, run on both backends: SQLite always, PostgreSQL when `DATABASE_URL` is set.

use chrono::{DateTime, Utc};

use super::{
    AddOutcome, Contents, LinkBlock, LinkError, LinkIndex, LinkIndexLocation, LinkSource, MergeReport, NewLink,
    testing::TestIndex,
};

const PRIMARY: &str = "00000000-0000-4000-8000-000000000001";
const DUPLICATE_1: &str = "00000000-0000-4000-8000-000000000002";
const DUPLICATE_2: &str = "00000000-0000-4000-8000-000000000003";
const DUPLICATE_3: &str = "00000000-0000-4000-8000-000000000004";
const EARLIER: &str = "00000000-0000-4000-8000-000000000005";

fn crm<'a>(identity_id: &'a str, person_id: &'a str, source: LinkSource) -> NewLink<'a> {
    NewLink {
        identity_id,
        block: LinkBlock::Crm,
        external_id: person_id,
        source,
        email: None,
    }
}

async fn add(index: &LinkIndex, link: NewLink<'_>) -> AddOutcome {
    index.add(link).await.expect("index answers")
}

crate::on_both_link_index_backends!(
    add_is_idempotent_and_never_overwrites,
    remove_takes_only_the_identitys_own_link,
    batched_reads_answer_every_key,
    merge_moves_links_to_the_survivor,
    merge_failing_half_way_leaves_the_old_links,
    export_then_import_reproduces_the_index_byte_for_byte,
    import_refuses_bad_lines_and_reports_conflicts,
    the_index_survives_reopening,
    lookups_record_replace_and_forget,
);

async fn add_is_idempotent_and_never_overwrites(db: &TestIndex) {
    let index = db.open();
    let first = NewLink {
        email: Some(" Ada@Example.COM "),
        ..crm("identity-1", PRIMARY, LinkSource::Registered)
    };
    let AddOutcome::Added(added) = add(&index, first).await else {
        panic!("a new link is added");
    };
    assert_eq!(
        (
            added.identity_id.as_str(),
            added.block,
            added.external_id.as_str(),
            added.source
        ),
        ("identity-1", LinkBlock::Crm, PRIMARY, LinkSource::Registered)
    );
    assert_eq!(
        add(&index, crm("identity-1", PRIMARY, LinkSource::Reindex)).await,
        AddOutcome::Kept(added.clone()),
        "the same link again keeps the stored one, source and time included"
    );
    let conflict = NewLink {
        email: Some("other@example.com"),
        ..crm("identity-2", PRIMARY, LinkSource::Explicit)
    };
    assert_eq!(
        add(&index, conflict).await,
        AddOutcome::Conflict { held_by: added.clone() }
    );
    assert_eq!(index.links_of("identity-1").await.expect("links"), vec![added.clone()]);
    assert!(index.links_of("identity-2").await.expect("links").is_empty());
    assert_eq!(
        index.identities_by_email("ADA@example.com").await.expect("by email"),
        vec!["identity-1".to_owned()],
        "emails are kept lower-cased and found case-insensitively"
    );
    assert!(
        index
            .identities_by_email("other@example.com")
            .await
            .expect("by email")
            .is_empty(),
        "a refused link records no email"
    );
    assert_eq!(
        index.holder(LinkBlock::Crm, PRIMARY).await.expect("holder"),
        Some(added)
    );
    assert_eq!(index.holder(LinkBlock::B2b, PRIMARY).await.expect("holder"), None);
}

async fn remove_takes_only_the_identitys_own_link(db: &TestIndex) {
    let index = db.open();
    add(&index, crm("identity-1", PRIMARY, LinkSource::Explicit)).await;
    assert_eq!(
        index
            .remove("identity-2", LinkBlock::Crm, PRIMARY)
            .await
            .expect("remove"),
        None,
        "another identity's link stays"
    );
    assert!(index.holder(LinkBlock::Crm, PRIMARY).await.expect("holder").is_some());
    let removed = index
        .remove("identity-1", LinkBlock::Crm, PRIMARY)
        .await
        .expect("remove");
    assert_eq!(removed.map(|link| link.identity_id), Some("identity-1".to_owned()));
    assert_eq!(index.holder(LinkBlock::Crm, PRIMARY).await.expect("holder"), None);
    assert!(matches!(
        add(&index, crm("identity-2", PRIMARY, LinkSource::Explicit)).await,
        AddOutcome::Added(_)
    ));
}

async fn batched_reads_answer_every_key(db: &TestIndex) {
    let index = db.open();
    let ids: Vec<String> = (1..=1200).map(|n| n.to_string()).collect();
    for id in ids.iter().step_by(2) {
        let link = NewLink {
            identity_id: &format!("identity-{id}"),
            block: LinkBlock::B2b,
            external_id: id,
            source: LinkSource::Reindex,
            email: None,
        };
        add(&index, link).await;
    }
    let holders = index.holders(LinkBlock::B2b, &ids).await.expect("holders");
    assert_eq!(holders.len(), 600, "more keys than one batch takes");
    assert!(
        holders
            .iter()
            .all(|link| link.identity_id == format!("identity-{}", link.external_id))
    );
    let identities: Vec<String> = ids.iter().map(|id| format!("identity-{id}")).collect();
    assert_eq!(index.links_of_many(&identities).await.expect("links").len(), 600);
}

async fn merge_moves_links_to_the_survivor(db: &TestIndex) {
    let index = db.open();
    add(&index, crm("identity-1", DUPLICATE_1, LinkSource::Registered)).await;
    add(&index, crm("identity-1", DUPLICATE_2, LinkSource::Explicit)).await;
    add(&index, crm("identity-3", DUPLICATE_3, LinkSource::Reindex)).await;
    // An earlier merge into a duplicate must now lead to the new survivor.
    index
        .merge(DUPLICATE_1, &[EARLIER.to_owned()])
        .await
        .expect("first merge");

    let duplicates = [DUPLICATE_1, DUPLICATE_2, DUPLICATE_3].map(str::to_owned);
    // The preview decides as the merge will and writes nothing.
    let before = index.contents().await.expect("contents");
    let planned = index.plan_merge(PRIMARY, &duplicates).await.expect("plan");
    assert_eq!(index.contents().await.expect("contents"), before, "a plan wrote");
    let report = index.merge(PRIMARY, &duplicates).await.expect("merge");
    // Links the merge makes carry the moment it ran; the plan's carry the moment it planned.
    let without_times = |report: &MergeReport| {
        let mut report = report.clone();
        let made = report.moved.iter_mut().map(|(_, moved)| moved);
        for link in made.chain(report.conflicts.iter_mut().map(|(_, holder)| holder)) {
            if link.source == LinkSource::Merged {
                link.created_at = DateTime::<Utc>::UNIX_EPOCH;
            }
        }
        report
    };
    assert_eq!(without_times(&planned), without_times(&report));

    assert_eq!(report.moved.len(), 1, "{report:?}");
    assert_eq!(
        (
            report.moved[0].1.identity_id.as_str(),
            report.moved[0].1.external_id.as_str()
        ),
        ("identity-1", PRIMARY)
    );
    assert_eq!(report.moved[0].0.external_id, DUPLICATE_1);
    assert_eq!(report.moved[0].1.source, LinkSource::Merged);
    assert_eq!(
        report.dropped.len(),
        1,
        "identity-1 already holds the primary: {report:?}"
    );
    assert_eq!(report.dropped[0].external_id, DUPLICATE_2);
    assert_eq!(
        report.conflicts.len(),
        1,
        "identity-3 cannot take a person identity-1 holds"
    );
    assert_eq!(report.conflicts[0].0.external_id, DUPLICATE_3);

    let links = index.links_of("identity-1").await.expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].external_id.as_str(), links[0].source),
        (PRIMARY, LinkSource::Merged)
    );
    assert_eq!(
        index.links_of("identity-3").await.expect("links")[0].external_id,
        DUPLICATE_3,
        "a conflicting link stays on its merged person"
    );
    for merged in [DUPLICATE_1, DUPLICATE_2, DUPLICATE_3, EARLIER] {
        assert_eq!(
            index.survivor_of(merged).await.expect("survivor").as_deref(),
            Some(PRIMARY),
            "{merged} leads to the survivor"
        );
    }
    assert_eq!(index.survivor_of(PRIMARY).await.expect("survivor"), None);

    // Merging the survivor away later makes it a merged person and its old duplicates follow.
    index.merge(EARLIER, &[PRIMARY.to_owned()]).await.expect("merge back");
    assert_eq!(
        index.survivor_of(EARLIER).await.expect("survivor"),
        None,
        "the new primary survives"
    );
    assert_eq!(
        index.survivor_of(DUPLICATE_1).await.expect("survivor").as_deref(),
        Some(EARLIER)
    );
}

async fn merge_failing_half_way_leaves_the_old_links(db: &TestIndex) {
    let index = db.open();
    add(&index, crm("identity-1", DUPLICATE_1, LinkSource::Registered)).await;
    add(&index, crm("identity-2", DUPLICATE_2, LinkSource::Registered)).await;
    let before = index.contents().await.expect("contents");
    // The second duplicate's merge record fails to insert: by then the first duplicate's
    // link has moved inside the transaction.
    let trigger = if index.is_postgres() {
        format!(
            "CREATE FUNCTION fail_merge() RETURNS trigger AS $$ BEGIN \
               IF NEW.person_id = '{DUPLICATE_2}' THEN RAISE EXCEPTION 'injected failure'; END IF; \
               RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER fail_merge BEFORE INSERT ON person_merges FOR EACH ROW EXECUTE FUNCTION fail_merge();"
        )
    } else {
        format!(
            "CREATE TRIGGER fail_merge BEFORE INSERT ON person_merges WHEN NEW.person_id = '{DUPLICATE_2}' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        )
    };
    index.execute_raw(&trigger).await.expect("trigger installed");

    let result = index
        .merge(PRIMARY, &[DUPLICATE_1.to_owned(), DUPLICATE_2.to_owned()])
        .await;

    assert!(matches!(result, Err(LinkError::Database(_))), "{result:?}");
    assert_eq!(
        index.contents().await.expect("contents"),
        before,
        "nothing of the merge remains"
    );
    assert_eq!(index.survivor_of(DUPLICATE_1).await.expect("survivor"), None);
}

/// An index with every kind of record: emails, links of both blocks and sources, merges.
async fn populate(index: &LinkIndex) {
    for (identity, person, source) in [
        ("identity-b", DUPLICATE_1, LinkSource::Registered),
        ("identity-a", PRIMARY, LinkSource::Explicit),
        ("identity-a", DUPLICATE_3, LinkSource::Reindex),
        ("Identity-C", DUPLICATE_2, LinkSource::Registered),
    ] {
        let link = NewLink {
            email: Some("Shared@Example.com"),
            ..crm(identity, person, source)
        };
        add(index, link).await;
    }
    for (identity, user) in [("identity-a", "42"), ("identity-b", "7"), ("identity-b", "100")] {
        let link = NewLink {
            identity_id: identity,
            block: LinkBlock::B2b,
            external_id: user,
            source: LinkSource::Explicit,
            email: None,
        };
        add(index, link).await;
    }
    index.set_email("identity-d", "only@example.com").await.expect("email");
    index.merge(PRIMARY, &[EARLIER.to_owned()]).await.expect("merge");
}

async fn export_of(index: &LinkIndex) -> Vec<u8> {
    let mut out = Vec::new();
    index.export(&mut out).await.expect("export");
    out
}

async fn export_then_import_reproduces_the_index_byte_for_byte(db: &TestIndex) {
    let index = db.open();
    populate(&index).await;
    let exported = export_of(&index).await;
    let text = String::from_utf8(exported.clone()).expect("UTF-8");
    assert_eq!(text.lines().count(), 4 + 7 + 1, "{text}");
    assert!(
        text.lines()
            .next()
            .is_some_and(|line| line.contains("\"kind\":\"identity\"")),
        "{text}"
    );

    // Into a fresh index on the same backend ...
    let copy_db = match &db.location {
        LinkIndexLocation::Postgres { .. } => TestIndex::postgres().expect("PostgreSQL is configured"),
        _ => TestIndex::sqlite(),
    };
    let copy = copy_db.open();
    let report = copy.import(exported.as_slice(), false).await.expect("import");
    assert_eq!((report.emails, report.added, report.merges), (4, 7, 1));
    assert_eq!(export_of(&copy).await, exported, "same backend, same bytes");
    copy_db.cleanup().await;

    // ... and across backends: an in-memory SQLite index gives the same file.
    let memory = LinkIndex::open(&LinkIndexLocation::Memory).expect("memory index");
    memory.import(exported.as_slice(), false).await.expect("import");
    assert_eq!(export_of(&memory).await, exported, "other backend, same bytes");

    // Importing into the index it came from changes nothing.
    let again = index.import(exported.as_slice(), false).await.expect("import");
    assert_eq!((again.added, again.kept, again.conflicts.len()), (0, 7, 0));
    assert_eq!(export_of(&index).await, exported);
}

async fn import_refuses_bad_lines_and_reports_conflicts(db: &TestIndex) {
    let index = db.open();
    add(&index, crm("identity-1", PRIMARY, LinkSource::Registered)).await;
    let bad = format!(
        "{{\"kind\":\"link\",\"identityId\":\"identity-2\",\"block\":\"crm\",\"externalId\":\"{DUPLICATE_1}\",\
         \"source\":\"explicit\",\"createdAt\":\"2026-01-01T00:00:00.000000Z\"}}\n\
         {{\"kind\":\"link\",\"identityId\":\"identity-2\",\"block\":\"sales\",\"externalId\":\"x\",\
         \"source\":\"explicit\",\"createdAt\":\"2026-01-01T00:00:00Z\"}}\n"
    );
    let error = index.import(bad.as_bytes(), false).await.expect_err("unknown block");
    assert!(matches!(error, LinkError::Import { line: 2, .. }), "{error}");
    assert_eq!(
        index.holder(LinkBlock::Crm, DUPLICATE_1).await.expect("holder"),
        None,
        "nothing imported"
    );

    let conflicting = format!(
        "{{\"kind\":\"link\",\"identityId\":\"identity-2\",\"block\":\"crm\",\"externalId\":\"{PRIMARY}\",\
         \"source\":\"explicit\",\"createdAt\":\"2026-01-01T00:00:00Z\"}}\n\n\
         {{\"kind\":\"link\",\"identityId\":\"identity-2\",\"block\":\"crm\",\"externalId\":\"{DUPLICATE_1}\",\
         \"source\":\"explicit\",\"createdAt\":\"2026-01-01T00:00:00.5Z\"}}\n"
    );
    let report = index.import(conflicting.as_bytes(), false).await.expect("import");
    assert_eq!(report.added, 1);
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(
        report.conflicts[0].1.identity_id, "identity-1",
        "the holder is reported and kept"
    );
    assert_eq!(
        index
            .holder(LinkBlock::Crm, PRIMARY)
            .await
            .expect("holder")
            .map(|l| l.identity_id),
        Some("identity-1".to_owned())
    );

    let replaced = index.import(conflicting.as_bytes(), true).await.expect("replace");
    assert_eq!(
        (replaced.added, replaced.conflicts.len()),
        (2, 0),
        "replace empties the index first"
    );
    assert_eq!(index.links_of("identity-1").await.expect("links"), vec![]);
}

async fn the_index_survives_reopening(db: &TestIndex) {
    let index = db.open();
    add(&index, crm("identity-1", PRIMARY, LinkSource::Registered)).await;
    index.set_meta("reindex.test", Some("100:3")).await.expect("meta");
    index.close().await;

    let reopened = LinkIndex::open_ready(&db.location).await.expect("reopens");
    assert_eq!(reopened.links_of("identity-1").await.expect("links").len(), 1);
    assert_eq!(
        reopened.meta("reindex.test").await.expect("meta").as_deref(),
        Some("100:3")
    );
    reopened.set_meta("reindex.test", None).await.expect("meta");
    assert_eq!(reopened.meta("reindex.test").await.expect("meta"), None);
    reopened.clear().await.expect("clear");
    assert_eq!(reopened.contents().await.expect("contents"), Contents::default());
}

async fn lookups_record_replace_and_forget(db: &TestIndex) {
    let index = db.open();
    // More than one batch of positions, one entity seen twice (the later page wins).
    let mut positions: Vec<(String, u32)> = (0..1_200).map(|n| (format!("entity-{n}"), n / 100 + 1)).collect();
    positions.insert(10, ("entity-5".to_owned(), 9));
    index.record_entity_positions(&positions, 100).await.expect("recorded");
    let position = index
        .entity_position("entity-1199")
        .await
        .expect("read")
        .expect("entry");
    assert_eq!((position.page, position.page_size), (Some(12), 100));
    assert_eq!(
        index
            .entity_position("entity-5")
            .await
            .expect("read")
            .and_then(|p| p.page),
        Some(9)
    );
    // A registered entity keeps a place already known, and has none otherwise.
    index.record_registered_entity("entity-0", 100).await.expect("recorded");
    index
        .record_registered_entity("new-entity", 100)
        .await
        .expect("recorded");
    assert_eq!(
        index
            .entity_position("entity-0")
            .await
            .expect("read")
            .and_then(|p| p.page),
        Some(1)
    );
    let new = index.entity_position("new-entity").await.expect("read").expect("entry");
    assert_eq!(new.page, None);
    index.forget_entity_position("entity-0").await.expect("forgotten");
    assert_eq!(index.entity_position("entity-0").await.expect("read"), None);

    // Emails in any case; one email twice in a batch keeps the first; blank ones are skipped.
    let emails = vec![
        (" Ann@Large.Example ".to_owned(), 7),
        ("ann@large.example".to_owned(), 8),
        ("  ".to_owned(), 9),
    ];
    index.record_b2b_emails(&emails).await.expect("recorded");
    assert_eq!(
        index.b2b_user_by_email("ANN@large.example").await.expect("read"),
        Some(7)
    );
    index
        .record_b2b_emails(&[("ann@large.example".to_owned(), 8)])
        .await
        .expect("recorded");
    assert_eq!(
        index.b2b_user_by_email("ann@large.example").await.expect("read"),
        Some(8)
    );
    assert_eq!(index.lookup_sizes().await.expect("sizes"), (1_200, 1));
    index.forget_b2b_email("Ann@Large.Example").await.expect("forgotten");
    assert_eq!(index.b2b_user_by_email("ann@large.example").await.expect("read"), None);
    index.clear().await.expect("cleared");
    assert_eq!(index.lookup_sizes().await.expect("sizes"), (0, 0));
}
