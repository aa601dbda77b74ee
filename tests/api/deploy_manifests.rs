//! `deploy/` read as a reviewer would: the Kubernetes manifests, the compose file and the
//! Dockerfile agree with each other and with the gateway (its routes, its port, the
//! variables it reads, the metrics token from the Secret to the gateway and to the
//! scraper), and the Secret template holds no real value. No Docker or
//! Kubernetes is needed: the files are parsed.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
};

use blocks_gateway::{blocks::BlockName, cache::CacheSettings, config};
use secrecy::SecretString;
use yaml_rust2::{Yaml, YamlLoader};

use crate::helpers::{spawn_app, spawn_app_with};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every document of every YAML file under `deploy/kubernetes`, by `kind`.
fn kubernetes_objects() -> HashMap<String, Vec<Yaml>> {
    let mut objects: HashMap<String, Vec<Yaml>> = HashMap::new();
    let dir = deploy_dir().join("kubernetes");
    for entry in std::fs::read_dir(&dir).expect("deploy/kubernetes") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        for document in YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
            let kind = document["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no kind", path.display()));
            objects.entry(kind.to_owned()).or_default().push(document.clone());
        }
    }
    objects
}

fn one<'a>(objects: &'a HashMap<String, Vec<Yaml>>, kind: &str) -> &'a Yaml {
    let found = objects.get(kind).unwrap_or_else(|| panic!("no {kind}"));
    assert_eq!(found.len(), 1, "one {kind}");
    &found[0]
}

fn text<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {yaml:?}"))
}

fn keys(map: &Yaml) -> Vec<String> {
    map.as_hash()
        .map(|hash| hash.keys().filter_map(|key| key.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The variables the gateway reads: configuration and telemetry.
fn known_variables() -> BTreeSet<&'static str> {
    config::KEYS.iter().copied().collect()
}

/// `ENV` names and the `EXPOSE`d port of the Dockerfile's last stage, and the stage count.
struct Dockerfile {
    stages: usize,
    exposed: Vec<u16>,
    env: HashMap<String, String>,
    user: Option<String>,
    entrypoint: Option<String>,
}

fn dockerfile() -> Dockerfile {
    let text = read("Dockerfile").replace("\\\n", " ");
    let mut file = Dockerfile {
        stages: 0,
        exposed: Vec::new(),
        env: HashMap::new(),
        user: None,
        entrypoint: None,
    };
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        let (instruction, rest) = line.split_once(' ').unwrap_or((line, ""));
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" => {
                file.stages += 1;
                file.exposed.clear();
                file.env.clear();
                file.user = None;
            }
            "EXPOSE" => file.exposed.extend(
                rest.split_whitespace()
                    .map(|p| p.trim_end_matches("/tcp").parse::<u16>().expect("port")),
            ),
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let (name, value) = pair.split_once('=').expect("ENV NAME=value");
                    file.env.insert(name.to_owned(), value.to_owned());
                }
            }
            "USER" => file.user = Some(rest.trim().to_owned()),
            "ENTRYPOINT" => file.entrypoint = Some(rest.trim().to_owned()),
            _ => {}
        }
    }
    file
}

fn port_of(listen: &str) -> u16 {
    listen
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .expect("host:port")
}

#[tokio::test]
async fn probes_point_at_routes_the_gateway_answers() {
    let objects = kubernetes_objects();
    let container = &one(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let app = spawn_app().await;
    for probe in ["readinessProbe", "livenessProbe"] {
        let path = text(&container[probe]["httpGet"]["path"], probe);
        assert_eq!(app.get(path, None).await.status(), 200, "{probe} {path}");
    }
    assert_eq!(
        text(&container["readinessProbe"]["httpGet"]["path"], "readiness"),
        "/readyz"
    );
    assert_eq!(
        text(&container["livenessProbe"]["httpGet"]["path"], "liveness"),
        "/healthz"
    );
    let scrape = &one(&objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"];
    let status = app.get(text(scrape, "scrape path"), None).await.status();
    assert_eq!(status, 200, "the scrape annotation names /metrics");
}

#[tokio::test]
async fn the_readiness_probe_holds_while_a_block_is_down() {
    let objects = kubernetes_objects();
    let container = &one(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let path = text(&container["readinessProbe"]["httpGet"]["path"], "readiness");
    assert!(
        !path.contains("strict"),
        "the probe must not depend on the blocks: {path}"
    );
    let app = spawn_app_with(
        |settings| {
            for block in &mut settings.gateway.blocks {
                if block.block == BlockName::Crm {
                    block.base_url = "http://127.0.0.1:9/api/crm".parse().expect("url");
                }
            }
        },
        CacheSettings::default(),
    )
    .await;
    assert_eq!(
        app.get(path, None).await.status(),
        200,
        "one block down keeps the replica in the Service"
    );
}

/// The labels of a Kubernetes object's `metadata`.
fn labels(object: &Yaml) -> &Yaml {
    &object["metadata"]["labels"]
}

#[tokio::test]
async fn the_metrics_token_goes_from_the_secret_to_the_gateway_and_to_the_scraper() {
    let objects = kubernetes_objects();
    let secret = one(&objects, "Secret");
    let token_key = "GATEWAY_METRICS_TOKEN";
    let placeholder = text(&secret["stringData"][token_key], "the metrics token in the Secret");

    let monitor = one(&objects, "ServiceMonitor");
    let endpoint = &monitor["spec"]["endpoints"][0];
    let credentials = &endpoint["authorization"]["credentials"];
    assert_eq!(endpoint["authorization"]["type"].as_str(), Some("Bearer"));
    assert_eq!(
        credentials["name"], secret["metadata"]["name"],
        "the Secret the gateway reads"
    );
    assert_eq!(text(&credentials["key"], "key"), token_key);
    let service = one(&objects, "Service");
    assert_eq!(
        endpoint["port"], service["spec"]["ports"][0]["name"],
        "the Service's port"
    );
    let annotations = &one(&objects, "Deployment")["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(endpoint["path"], annotations["prometheus.io/path"]);
    for (key, value) in monitor["spec"]["selector"]["matchLabels"].as_hash().expect("selector") {
        assert_eq!(
            &labels(service)[key.as_str().expect("label")],
            value,
            "selects the Service"
        );
    }
    let kustomization = YamlLoader::load_from_str(&read("kubernetes/kustomization.yaml")).expect("yaml");
    assert!(
        !kustomization[0]["resources"]
            .as_vec()
            .expect("resources")
            .iter()
            .any(|file| file.as_str().is_some_and(|f| f.contains("servicemonitor"))),
        "a CRD object is applied apart"
    );

    // The gateway with that value refuses a scrape without it and serves one with it.
    let app = spawn_app_with(
        |settings| settings.server.metrics_token = Some(SecretString::from(placeholder)),
        CacheSettings::default(),
    )
    .await;
    assert_eq!(app.get("/metrics", None).await.status(), 401);
    let bearer = format!("Bearer {placeholder}");
    assert_eq!(app.get("/metrics", Some(&bearer)).await.status(), 200);
}

#[test]
fn compose_wires_the_metrics_token_to_the_gateways_and_prometheus() {
    let compose = compose();
    let secret = keys(&compose["secrets"])
        .into_iter()
        .find(|name| name.contains("metrics"))
        .expect("a metrics token secret");
    let source = text(&compose["secrets"][secret.as_str()]["environment"], "secret source");
    for gateway in compose_gateways(&compose) {
        let value = text(&gateway["environment"]["GATEWAY_METRICS_TOKEN"], "token");
        assert!(
            value.starts_with(&format!("${{{source}:?")),
            "the gateways take the value the secret is made of, and refuse to start without it: {value}"
        );
    }
    let prometheus = &compose["services"]["prometheus"];
    let mounted: Vec<&str> = prometheus["secrets"]
        .as_vec()
        .expect("secrets")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(mounted.contains(&secret.as_str()), "{mounted:?}");
    let config_mount = prometheus["volumes"][0].as_str().expect("config mount");
    let (local, in_container) = config_mount.split_once(':').expect("a bind mount");
    let config = YamlLoader::load_from_str(&read(local.trim_start_matches("./"))).expect("prometheus.yml");
    assert!(in_container.starts_with("/etc/prometheus/prometheus.yml"));
    let job = &config[0]["scrape_configs"][0];
    assert_eq!(job["metrics_path"].as_str(), Some("/metrics"));
    assert_eq!(job["authorization"]["type"].as_str(), Some("Bearer"));
    assert_eq!(
        text(&job["authorization"]["credentials_file"], "credentials_file"),
        format!("/run/secrets/{secret}"),
        "the scraper reads the secret compose mounts"
    );
    let targets: Vec<&str> = job["static_configs"][0]["targets"]
        .as_vec()
        .expect("targets")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    let exposed = dockerfile().exposed[0];
    for name in keys(&compose["services"])
        .iter()
        .filter(|name| name.starts_with("gateway"))
    {
        assert!(
            targets.contains(&format!("{name}:{exposed}").as_str()),
            "scrapes {name}: {targets:?}"
        );
    }
}

#[test]
fn one_port_from_the_image_to_the_service() {
    let objects = kubernetes_objects();
    let docker = dockerfile();
    assert_eq!(docker.exposed.len(), 1, "the runtime stage exposes one port");
    let exposed = docker.exposed[0];
    assert_eq!(
        port_of(&docker.env["GATEWAY_LISTEN"]),
        exposed,
        "the image listens where it exposes"
    );
    assert!(
        docker.env["GATEWAY_LISTEN"].starts_with("0.0.0.0:"),
        "reachable from outside the container"
    );

    let container = &one(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let port = &container["ports"][0];
    let container_port = u16::try_from(port["containerPort"].as_i64().expect("containerPort")).expect("port");
    assert_eq!(container_port, exposed);
    let config_map = &one(&objects, "ConfigMap")["data"];
    assert_eq!(port_of(text(&config_map["GATEWAY_LISTEN"], "GATEWAY_LISTEN")), exposed);
    for probe in ["readinessProbe", "livenessProbe"] {
        let probe_port = &container[probe]["httpGet"]["port"];
        assert!(
            probe_port.as_str() == port["name"].as_str() || probe_port.as_i64() == Some(i64::from(exposed)),
            "{probe} targets the container port"
        );
    }
    let target = &one(&objects, "Service")["spec"]["ports"][0]["targetPort"];
    let resolved = match target {
        Yaml::String(name) => {
            assert_eq!(Some(name.as_str()), port["name"].as_str(), "named target port");
            container_port
        }
        other => u16::try_from(other.as_i64().expect("targetPort")).expect("port"),
    };
    assert_eq!(resolved, exposed);
    let annotation = &one(&objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"];
    assert_eq!(text(annotation, "scrape port").parse::<u16>().expect("port"), exposed);
}

#[test]
fn every_variable_set_is_one_the_gateway_reads() {
    let known = known_variables();
    let objects = kubernetes_objects();
    let mut set: Vec<(String, &str)> = Vec::new();
    set.extend(
        keys(&one(&objects, "ConfigMap")["data"])
            .into_iter()
            .map(|k| (k, "ConfigMap")),
    );
    set.extend(
        keys(&one(&objects, "Secret")["stringData"])
            .into_iter()
            .map(|k| (k, "Secret")),
    );
    let container = &one(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    if let Some(env) = container["env"].as_vec() {
        set.extend(
            env.iter()
                .map(|e| (text(&e["name"], "env name").to_owned(), "Deployment")),
        );
    }
    set.extend(dockerfile().env.into_keys().map(|k| (k, "Dockerfile")));
    for service in compose_gateways(&compose()) {
        set.extend(
            keys(&service["environment"])
                .into_iter()
                .map(|k| (k, "docker-compose.yml")),
        );
    }
    for line in read("gateway.env.example").lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some((name, _)) = line.split_once('=')
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            set.push((name.to_owned(), "gateway.env.example"));
        }
    }
    assert!(set.len() > 20, "{set:?}");
    let unknown: Vec<_> = set.iter().filter(|(name, _)| !known.contains(name.as_str())).collect();
    assert!(unknown.is_empty(), "set but never read: {unknown:?}");
}

#[test]
fn the_secret_template_holds_placeholders_only() {
    let objects = kubernetes_objects();
    let secret = one(&objects, "Secret");
    assert!(secret["data"].is_badvalue(), "base64 `data` would hide what is in it");
    let values = secret["stringData"].as_hash().expect("stringData");
    assert!(!values.is_empty());
    for (key, value) in values {
        let value = text(value, "secret value");
        assert!(
            value.contains("REPLACE_ME"),
            "{key:?} holds a value that is not a placeholder"
        );
    }
    // The same for the compose env template.
    for line in read("gateway.env.example").lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, value)) = line.split_once('=')
            && (name.ends_with("_TOKEN") || name.ends_with("_KEY") || name.ends_with("_HASHES"))
        {
            assert_eq!(value, "REPLACE_ME", "{name}");
        }
    }
}

#[test]
fn the_deployment_is_production_shaped() {
    let objects = kubernetes_objects();
    let deployment = one(&objects, "Deployment");
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(
        &one(&objects, "Service")["spec"]["selector"],
        labels,
        "the Service selects the pods"
    );
    assert_eq!(
        &one(&objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        labels,
        "the budget covers the pods"
    );
    let hpa = one(&objects, "HorizontalPodAutoscaler");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"].as_str(), Some("Deployment"));
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], deployment["metadata"]["name"]);
    assert!(
        hpa["spec"]["minReplicas"].as_i64().expect("minReplicas") >= 2,
        "never a single replica"
    );

    let container = &pod["spec"]["containers"][0];
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                !container["resources"][bound][resource].is_badvalue(),
                "{bound}.{resource}"
            );
        }
    }
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    let env_from: Vec<&str> = container["envFrom"]
        .as_vec()
        .expect("envFrom")
        .iter()
        .filter_map(|source| {
            source["configMapRef"]["name"]
                .as_str()
                .or(source["secretRef"]["name"].as_str())
        })
        .collect();
    assert!(env_from.contains(&text(&one(&objects, "ConfigMap")["metadata"]["name"], "ConfigMap name")));
    assert!(env_from.contains(&text(&one(&objects, "Secret")["metadata"]["name"], "Secret name")));

    // The kubelet's SIGKILL must come after the gateway's own drain: delay plus timeout.
    let data = &one(&objects, "ConfigMap")["data"];
    let ms = |key: &str| text(&data[key], key).parse::<i64>().expect("milliseconds");
    let drain_seconds = (ms("GATEWAY_SHUTDOWN_DELAY_MS") + ms("GATEWAY_SHUTDOWN_TIMEOUT_MS")) / 1000;
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("grace period");
    assert!(
        grace > drain_seconds,
        "terminationGracePeriodSeconds {grace} <= drain {drain_seconds}"
    );
    let rollout = &deployment["spec"]["strategy"]["rollingUpdate"];
    assert_eq!(
        rollout["maxUnavailable"].as_i64(),
        Some(0),
        "rollouts keep every replica serving"
    );

    let kustomization = YamlLoader::load_from_str(&read("kubernetes/kustomization.yaml")).expect("yaml");
    let listed: Vec<&str> = kustomization[0]["resources"]
        .as_vec()
        .expect("resources")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    for file in [
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
        "pdb.yaml",
        "configmap.yaml",
    ] {
        assert!(listed.contains(&file), "kustomization lists {file}");
    }
    assert!(
        !listed.iter().any(|f| f.contains("secret")),
        "the Secret template is not applied"
    );
}

fn compose() -> Yaml {
    YamlLoader::load_from_str(&read("docker-compose.yml"))
        .expect("docker-compose.yml")
        .remove(0)
}

/// The gateway services, with `<<: *anchor` merges applied.
fn compose_gateways(compose: &Yaml) -> Vec<Yaml> {
    compose["services"]
        .as_hash()
        .expect("services")
        .iter()
        .filter(|(name, _)| name.as_str().is_some_and(|n| n.starts_with("gateway")))
        .map(|(_, service)| merged(service))
        .collect()
}

fn merged(service: &Yaml) -> Yaml {
    let mut own = service.as_hash().expect("a service map").clone();
    if let Some(Yaml::Hash(base)) = own.remove(&Yaml::String("<<".to_owned())) {
        for (key, value) in base {
            own.entry(key).or_insert(value);
        }
    }
    Yaml::Hash(own)
}

#[test]
fn compose_runs_two_replicas_with_redis_postgres_and_a_balancer() {
    let compose = compose();
    let gateways = compose_gateways(&compose);
    assert_eq!(gateways.len(), 2, "two gateway replicas");
    let services = keys(&compose["services"]);
    for needed in ["redis", "postgres", "load-balancer"] {
        assert!(services.iter().any(|s| s == needed), "{needed} in {services:?}");
    }
    let exposed = dockerfile().exposed[0];
    for gateway in &gateways {
        let env = &gateway["environment"];
        assert!(text(&env["REDIS_URL"], "REDIS_URL").starts_with("redis://redis:"));
        assert!(text(&env["DATABASE_URL"], "DATABASE_URL").contains("@postgres:"));
        assert_eq!(port_of(text(&env["GATEWAY_LISTEN"], "GATEWAY_LISTEN")), exposed);
        assert_eq!(text(&gateway["build"]["dockerfile"], "dockerfile"), "deploy/Dockerfile");
    }
    // The balancer's configuration names both replicas at the gateway's port.
    let nginx = read("nginx/nginx.conf");
    let gateway_names: Vec<String> = compose["services"]
        .as_hash()
        .expect("services")
        .keys()
        .filter_map(|k| k.as_str().filter(|n| n.starts_with("gateway")).map(str::to_owned))
        .collect();
    for name in gateway_names {
        assert!(
            nginx.contains(&format!("server {name}:{exposed}")),
            "nginx upstream lists {name}"
        );
    }
    let mounted = compose["services"]["load-balancer"]["volumes"][0]
        .as_str()
        .expect("config mount");
    assert!(mounted.starts_with("./nginx/nginx.conf:"), "{mounted}");
}

#[test]
fn the_image_is_multi_stage_and_runs_the_binary_as_non_root() {
    let docker = dockerfile();
    assert!(docker.stages >= 2, "a build stage and a runtime stage");
    let user = docker.user.expect("the runtime stage sets USER");
    assert!(!user.starts_with("root") && !user.starts_with("0"), "non-root: {user}");
    let entrypoint = docker.entrypoint.expect("ENTRYPOINT");
    assert!(
        entrypoint.contains(env!("CARGO_PKG_NAME")),
        "runs blocks-gateway: {entrypoint}"
    );
    let text = read("Dockerfile");
    let runtime = text.rsplit("\nFROM ").next().expect("runtime stage");
    assert!(!runtime.contains("cargo"), "no toolchain in the runtime stage");
    assert!(
        text.contains("--no-default-features"),
        "the image's binary is built without the sandbox"
    );
}
