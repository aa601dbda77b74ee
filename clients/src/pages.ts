// What a frontend does with the generated types: if a field the examples select is
// renamed or removed in the schema, codegen fails; if the examples change shape, this
// file stops compiling. Both fail CI.
import type {
  B2BUsersQuery,
  IdentityProfileQuery,
  OrganizationPageQuery,
  PersonListQuery,
  PersonListQueryVariables,
  PreviewMergePersonsMutation,
  RegisterIdentityMutation,
} from '../generated/operations';

/** One row of the person list table. */
export interface PersonRow {
  id: string;
  name: string;
  email: string | null;
  organization: string | null;
}

/** Rows of the person list page, plus the cursor of the next page. */
export function personRows(data: PersonListQuery): { rows: PersonRow[]; next: PersonListQueryVariables | null } {
  const rows = data.persons.edges.map(({ node }) => ({
    id: node.id,
    name: node.name,
    email: node.primaryEmail,
    organization: node.organization?.name ?? null,
  }));
  const { hasNextPage, endCursor } = data.persons.pageInfo;
  return { rows, next: hasNextPage ? { first: rows.length, after: endCursor } : null };
}

/** The profile header: the best known name and the blocks that know the identity. */
export function profileHeader(data: IdentityProfileQuery): string | null {
  const identity = data.identity;
  if (!identity) return null;
  const name = identity.displayName ?? identity.email ?? identity.id;
  return `${name} (${identity.registeredIn.join(', ')})`;
}

/** Names of an organization's persons. */
export function organizationMembers(data: OrganizationPageQuery): string[] {
  return data.organization?.persons.edges.map(({ node }) => node.name) ?? [];
}

/** The blocks a registration failed in, with the reason. */
export function failedRegistrations(data: RegisterIdentityMutation): string[] {
  return data.registerIdentity.outcomes
    .filter((outcome) => outcome.status === 'FAILED')
    .map((outcome) => `${outcome.block}: ${outcome.error?.message ?? 'unknown error'}`);
}

/** What a merge preview tells before the merge: who goes inactive, which links move, what stops it. */
export function mergePreviewSummary(data: PreviewMergePersonsMutation): string[] {
  const preview = data.mergePersons;
  if (preview.userErrors.length > 0) {
    return preview.userErrors.map((error) => `blocked: ${error.code} ${error.message}`);
  }
  const moves = preview.linkChanges.map((change) => `${change.identityId}: ${change.outcome}`);
  return [`${preview.mergedIds.length} person(s) would go inactive`, ...moves];
}

/** Rows of the B2B users table with the division's kind. */
export function b2bUserRows(data: B2BUsersQuery): string[] {
  return data.b2bUsers.edges.map(({ node }) => `${node.email ?? node.id} (${node.division?.divisionType ?? 'no division'})`);
}
