// @ts-check
// Apollo Client's cache for blocks-gateway: what the README shows, run against the gateway
// by test/frontend.mjs. Every object type the cache normalises has an `id` (select it);
// these policies add what `id` cannot say.
import { relayStylePagination } from '@apollo/client/utilities';

/**
 * A reference whose object is gone (evicted after a delete) reads as null, as the gateway
 * answers it then (a deleted organization is cleared from its persons; a deleted person
 * is no identity's person any more).
 * @type {import('@apollo/client').FieldPolicy}
 */
const nullWhenDeleted = {
  read(existing, { canRead }) {
    // Not read yet stays missing (undefined), so the cache still asks the network.
    if (existing === undefined || existing === null) return existing;
    return canRead(existing) ? existing : null;
  },
};

/**
 * A list a later answer replaces whole (it may shrink: an unlinked link, a returned asset).
 * @type {import('@apollo/client').FieldPolicy}
 */
const replacedWhole = { merge: false };

/** @type {import('@apollo/client').TypePolicies} */
export const typePolicies = {
  Query: {
    fields: {
      // Relay connections: pages of one list share a cache entry per filter, not per cursor.
      persons: relayStylePagination(['filter']),
      organizations: relayStylePagination(['filter']),
      identities: relayStylePagination(),
      b2bUsers: relayStylePagination(['filter']),
      salesEntities: relayStylePagination(),
      assetsUsers: relayStylePagination(),
    },
  },
  Organization: {
    fields: {
      persons: relayStylePagination(['lifecycleStage', 'filter']),
    },
  },
  Person: {
    fields: {
      organization: nullWhenDeleted,
    },
  },
  Identity: {
    fields: {
      person: nullWhenDeleted,
      links: replacedWhole,
    },
  },
  AssetsUser: {
    fields: {
      assets: replacedWhole,
      entities: replacedWhole,
      ownership: replacedWhole,
    },
  },
};

/**
 * The `update` of a delete mutation (`deletePerson`, `deleteOrganization`): the payload
 * names the deleted object's type and id, so it leaves the cache, and lists holding it
 * drop it.
 * @param {import('@apollo/client').ApolloCache} cache
 * @param {{ data?: Record<string, unknown> | null }} result
 */
export function evictDeleted(cache, { data }) {
  for (const payload of Object.values(data ?? {})) {
    const { deletedId, deletedType } = /** @type {{ deletedId?: string | null; deletedType?: string | null }} */ (
      payload ?? {}
    );
    if (deletedId && deletedType) {
      cache.evict({ id: cache.identify({ __typename: deletedType, id: deletedId }) });
    }
  }
  cache.gc();
}
