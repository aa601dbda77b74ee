// GraphQL Code Generator: TypeScript types for the example operations, generated from the
// published schema, and the client preset's typed documents with their persisted-documents
// manifest (what GATEWAY_TRUSTED_DOCUMENTS reads).
import type { CodegenConfig } from '@graphql-codegen/cli';
import { addTypenameSelectionDocumentTransform } from '@graphql-codegen/client-preset';

const scalars = { DateTime: 'string', JSON: 'unknown' };

const config: CodegenConfig = {
  overwrite: true,
  schema: '../schema.graphql',
  documents: '../examples/operations/*.graphql',
  generates: {
    // Only `typescript-operations`: it inlines the schema types the operations use; adding
    // the `typescript` plugin beside it emits each enum twice (tsc: duplicate identifier).
    'generated/operations.ts': {
      plugins: ['typescript-operations'],
      config: { strictScalars: true, scalars, avoidOptionals: { field: true }, enumType: 'string-literal' },
    },
    // The client preset as a frontend project configures it: typed documents, `__typename`
    // in every selection (Apollo's and urql's caches read it; a document sent by hash alone
    // must ask for it itself), and `persisted-documents.json` keyed `sha256:<hex>`.
    'generated/client/': {
      preset: 'client',
      config: { strictScalars: true, scalars, enumsAsTypes: true },
      documentTransforms: [addTypenameSelectionDocumentTransform],
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
    },
  },
};

export default config;
