#!/usr/bin/env bash
# The breaking-change guard (run by .ci/run through `npm run schema:guard`).
#
# 1. schema.graphql is compared with schema.release.graphql (the schema clients were last
#    promised) by `graphql-inspector diff`: a breaking change fails; dangerous changes
#    (e.g. a new enum value) and safe ones (a new field) pass.
# 2. Releasing a breaking change is deliberate: copy schema.graphql over
#    schema.release.graphql in the same change and say so in CHANGELOG.md. When
#    schema.release.graphql differs from the base (SCHEMA_GUARD_BASE, default HEAD~1; use
#    the target branch for a pull request), CHANGELOG.md must differ too, and when the new
#    release breaks the previous one, the CHANGELOG lines added must contain "breaking".
set -euo pipefail
cd "$(dirname "$0")/../.."
inspector=clients/node_modules/.bin/graphql-inspector
fail() {
  echo "schema guard: $*" >&2
  exit 1
}

echo "schema guard: schema.graphql against schema.release.graphql"
"$inspector" diff schema.release.graphql schema.graphql ||
  fail "schema.graphql breaks clients of the released schema. Deprecate instead of removing or renaming; to release a breaking change, copy schema.graphql to schema.release.graphql and describe it under a CHANGELOG.md heading that says BREAKING."

base=${SCHEMA_GUARD_BASE:-HEAD~1}
if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
  echo "schema guard: no base commit $base; release acknowledgement not checked"
  exit 0
fi
if git diff --quiet "$base" -- schema.release.graphql; then
  exit 0
fi
git diff --quiet "$base" -- CHANGELOG.md &&
  fail "schema.release.graphql changed since $base but CHANGELOG.md did not: describe the release."
previous=$(mktemp)
trap 'rm -f "$previous"' EXIT
if ! git show "$base:schema.release.graphql" >"$previous" 2>/dev/null; then
  echo "schema guard: first release"
  exit 0
fi
echo "schema guard: the new release against the previous one"
if ! "$inspector" diff "$previous" schema.release.graphql; then
  git diff "$base" -- CHANGELOG.md | grep '^+' | grep -qi 'breaking' ||
    fail "schema.release.graphql breaks the previous release but the CHANGELOG.md entry does not say BREAKING."
  echo "schema guard: breaking release acknowledged in CHANGELOG.md"
fi
