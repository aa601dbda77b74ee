// @ts-check
// An answer checked against the types GraphQL Code Generator generates for its operation:
// those types are the schema's types narrowed to the operation's selection set, so the
// answer is walked along that selection set with graphql-js. Every selected field must be
// present (the codegen config sets `avoidOptionals`), nothing else may be, null only where
// the schema allows it, each scalar of its TypeScript type (`DateTime` a string in the one
// form the gateway writes), each enum value one of the schema's.
import {
  Kind,
  getNamedType,
  isAbstractType,
  isEnumType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  typeFromAST,
  valueFromAST,
} from 'graphql';

/** `2025-01-10T10:30:00.000Z`: RFC 3339, UTC, `Z`, milliseconds. */
export const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** @typedef {import('graphql').GraphQLSchema} GraphQLSchema */
/** @typedef {import('graphql').GraphQLOutputType} GraphQLOutputType */
/** @typedef {import('graphql').GraphQLObjectType} GraphQLObjectType */
/** @typedef {import('graphql').GraphQLCompositeType} GraphQLCompositeType */
/** @typedef {import('graphql').SelectionSetNode} SelectionSetNode */
/** @typedef {import('graphql').FieldNode} FieldNode */
/** @typedef {import('graphql').FragmentDefinitionNode} FragmentDefinitionNode */
/** @typedef {import('graphql').OperationDefinitionNode} OperationDefinitionNode */
/** @typedef {import('graphql').DocumentNode} DocumentNode */

/**
 * @typedef {object} Walk
 * @property {GraphQLSchema} schema
 * @property {Map<string, FragmentDefinitionNode>} fragments
 * @property {Record<string, unknown>} variables
 * @property {string[]} problems
 */

/**
 * The problems of `data` as the answer to `operationName` of `document` (none: it matches
 * the generated types).
 * @param {GraphQLSchema} schema
 * @param {DocumentNode} document
 * @param {string | undefined} operationName
 * @param {Record<string, unknown>} variables
 * @param {unknown} data
 * @returns {string[]}
 */
export function shapeProblems(schema, document, operationName, variables, data) {
  /** @type {OperationDefinitionNode[]} */
  const operations = [];
  /** @type {Map<string, FragmentDefinitionNode>} */
  const fragments = new Map();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) operations.push(definition);
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const operation = operationName
    ? operations.find((candidate) => candidate.name?.value === operationName)
    : operations.length === 1
      ? operations[0]
      : undefined;
  if (!operation) return [`no operation ${operationName ?? '(unnamed)'} in the document`];
  const root = schema.getRootType(operation.operation);
  if (!root) return [`the schema has no ${operation.operation} type`];
  /** @type {Walk} */
  const walk = { schema, fragments, variables, problems: [] };
  checkObject(walk, root, [operation.selectionSet], data, operation.name?.value ?? 'data');
  return walk.problems;
}

/**
 * @param {Walk} walk
 * @param {GraphQLOutputType} type
 * @param {SelectionSetNode[]} selectionSets
 * @param {unknown} value
 * @param {string} path
 */
function checkValue(walk, type, selectionSets, value, path) {
  if (isNonNullType(type)) {
    if (value === null || value === undefined) {
      walk.problems.push(`${path}: null where the schema says ${type}`);
      return;
    }
    checkValue(walk, type.ofType, selectionSets, value, path);
    return;
  }
  if (value === null) return;
  if (value === undefined) {
    walk.problems.push(`${path}: missing`);
    return;
  }
  if (isListType(type)) {
    if (!Array.isArray(value)) {
      walk.problems.push(`${path}: not a list`);
      return;
    }
    value.forEach((item, index) => checkValue(walk, type.ofType, selectionSets, item, `${path}.${index}`));
    return;
  }
  if (isScalarType(type)) {
    const problem = scalarProblem(type.name, value);
    if (problem) walk.problems.push(`${path}: ${problem} (${JSON.stringify(value)})`);
    return;
  }
  if (isEnumType(type)) {
    if (typeof value !== 'string' || !type.getValue(value)) {
      walk.problems.push(`${path}: ${JSON.stringify(value)} is not a ${type.name} value`);
    }
    return;
  }
  checkObject(walk, /** @type {GraphQLCompositeType} */ (type), selectionSets, value, path);
}

/**
 * What a scalar of the gateway's schema must be in JSON, as the generated types have it.
 * @param {string} name
 * @param {unknown} value
 * @returns {string | undefined}
 */
function scalarProblem(name, value) {
  switch (name) {
    case 'ID':
    case 'String':
      return typeof value === 'string' ? undefined : `not a string (${name})`;
    case 'Int':
      return Number.isInteger(value) && Math.abs(/** @type {number} */ (value)) <= 2 ** 31
        ? undefined
        : 'not a 32-bit integer';
    case 'Float':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'not a number';
    case 'Boolean':
      return typeof value === 'boolean' ? undefined : 'not a boolean';
    case 'DateTime':
      return typeof value === 'string' && DATE_TIME.test(value)
        ? undefined
        : 'not a DateTime in UTC with Z and milliseconds';
    case 'JSON':
      return undefined;
    default:
      return `unknown scalar ${name}`;
  }
}

/**
 * An object: exactly the fields its selection sets select (merged by response key).
 * @param {Walk} walk
 * @param {GraphQLCompositeType} type
 * @param {SelectionSetNode[]} selectionSets
 * @param {unknown} value
 * @param {string} path
 */
function checkObject(walk, type, selectionSets, value, path) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    walk.problems.push(`${path}: not an object`);
    return;
  }
  const object = /** @type {Record<string, unknown>} */ (value);
  let runtimeType = /** @type {GraphQLObjectType | undefined} */ (isObjectType(type) ? type : undefined);
  if (isAbstractType(type)) {
    const named = walk.schema.getType(String(object.__typename));
    if (!isObjectType(named) || !walk.schema.isSubType(type, named)) {
      walk.problems.push(`${path}: __typename ${JSON.stringify(object.__typename)} is not a ${type.name}`);
      return;
    }
    runtimeType = named;
  }
  if (!runtimeType) return;
  /** @type {Map<string, FieldNode[]>} */
  const fields = new Map();
  for (const selectionSet of selectionSets) collectFields(walk, runtimeType, selectionSet, fields);
  for (const key of Object.keys(object)) {
    if (!fields.has(key)) walk.problems.push(`${path}.${key}: not selected`);
  }
  for (const [key, nodes] of fields) {
    const name = nodes[0].name.value;
    const fieldPath = `${path}.${key}`;
    if (!(key in object)) {
      walk.problems.push(`${fieldPath}: missing`);
      continue;
    }
    if (name === '__typename') {
      if (object[key] !== runtimeType.name) walk.problems.push(`${fieldPath}: ${JSON.stringify(object[key])}, not ${runtimeType.name}`);
      continue;
    }
    const definition = runtimeType.getFields()[name];
    if (!definition) {
      walk.problems.push(`${fieldPath}: ${runtimeType.name} has no field ${name}`);
      continue;
    }
    const childSets = nodes.flatMap((node) => (node.selectionSet ? [node.selectionSet] : []));
    if (childSets.length === 0 && !isScalarType(getNamedType(definition.type)) && !isEnumType(getNamedType(definition.type))) {
      walk.problems.push(`${fieldPath}: an object field selected without fields`);
      continue;
    }
    checkValue(walk, definition.type, childSets, object[key], fieldPath);
  }
}

/**
 * The fields `selectionSet` selects on an object of `type`, by response key, through
 * fragments that apply and past `@skip`/`@include`.
 * @param {Walk} walk
 * @param {GraphQLObjectType} type
 * @param {SelectionSetNode} selectionSet
 * @param {Map<string, FieldNode[]>} fields
 */
function collectFields(walk, type, selectionSet, fields) {
  for (const selection of selectionSet.selections) {
    if (!included(walk, selection)) continue;
    if (selection.kind === Kind.FIELD) {
      const key = selection.alias?.value ?? selection.name.value;
      fields.set(key, [...(fields.get(key) ?? []), selection]);
      continue;
    }
    const fragment =
      selection.kind === Kind.INLINE_FRAGMENT ? selection : walk.fragments.get(selection.name.value);
    if (!fragment) {
      walk.problems.push(`unknown fragment ${selection.kind === Kind.FRAGMENT_SPREAD ? selection.name.value : ''}`);
      continue;
    }
    const condition = fragment.typeCondition ? typeFromAST(walk.schema, fragment.typeCondition) : type;
    const applies =
      condition === type || (condition && isAbstractType(condition) && walk.schema.isSubType(condition, type));
    if (applies) collectFields(walk, type, fragment.selectionSet, fields);
  }
}

/**
 * Whether `@skip`/`@include` keep a selection.
 * @param {Walk} walk
 * @param {import('graphql').SelectionNode} selection
 */
function included(walk, selection) {
  for (const directive of selection.directives ?? []) {
    const argument = directive.arguments?.find((candidate) => candidate.name.value === 'if');
    if (!argument) continue;
    const condition = valueFromAST(argument.value, /** @type {any} */ (walk.schema.getType('Boolean')), walk.variables);
    if (directive.name.value === 'skip' && condition === true) return false;
    if (directive.name.value === 'include' && condition === false) return false;
  }
  return true;
}
