import type { TSchema } from '@sinclair/typebox';
import { CLIENT_EVENT_SPECS, type ClientEventSpec } from './client';
import { ERRORS, type ErrorCode, type ErrorSpec } from './errors';
import { SERVER_EVENT_SPECS, type ServerEventSpec } from './server';
import { ChatMessage, ConsumeOk, IceServer, ParticipantState, ProducerInfo, RecordingFile, RecordingFinished, RoomState, TransportInfo } from './shapes';

/**
 * The generated parts of the documentation: the event tables of
 * server/signaling/protocol.md and the error tables of protocol.md and
 * docs/errors.md, rendered from the declarations. `npm run docs` writes them
 * between their markers (`<!-- generated:NAME -->` … `<!-- /generated -->`);
 * a test fails when a committed document differs from what this renders.
 */
type Section = ClientEventSpec['section'];
const SECTIONS: readonly Section[] = ['call', 'media', 'recording', 'invitations'];
/** Codes every client event can fail with; the tables leave them out. */
export const COMMON_CODES: readonly ErrorCode[] = [
  'VALIDATION_FAILED',
  'INVALID_TEXT',
  'RATE_LIMITED',
  'AUTH_REQUIRED',
  'TOKEN_EXPIRED',
  'DATABASE_UNAVAILABLE',
  'CLUSTER_UNAVAILABLE',
  'INTERNAL_ERROR',
];

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (s: string) => '`' + s + '`';

interface Shape {
  type?: string;
  properties?: Record<string, Shape>;
  required?: string[];
  anyOf?: Shape[];
  const?: unknown;
  enum?: unknown[];
}

/** `'a' | 'b'` for an enumeration or a union of literals, else undefined. */
function literals(s: Shape): string | undefined {
  if (s.const !== undefined) return JSON.stringify(s.const).replace(/"/g, "'");
  if (s.enum) return s.enum.map((x) => JSON.stringify(x).replace(/"/g, "'")).join(' | ');
  if (!s.anyOf || !s.anyOf.every((x) => x.const !== undefined)) return undefined;
  return s.anyOf.map((x) => JSON.stringify(x.const).replace(/"/g, "'")).join(' | ');
}

/** `{ room, display_name?, mode?: 'sfu' | 'p2p' }`: an object's fields, optional ones marked. */
export function outline(schema: TSchema): string {
  const s = schema as Shape;
  const fields = Object.entries(s.properties ?? {});
  if (fields.length === 0) return '{}';
  const required = new Set(s.required ?? []);
  const parts = fields.map(([name, f]) => {
    const lit = literals(f);
    return `${name}${required.has(name) ? '' : '?'}${lit ? `: ${lit}` : ''}`;
  });
  return `{ ${parts.join(', ')} }`;
}

function clientTable(section: Section): string {
  const rows = Object.entries(CLIENT_EVENT_SPECS as Record<string, ClientEventSpec>).filter(([, spec]) => spec.section === section);
  const lines = ['| event | payload | ack result | errors | what |', '|---|---|---|---|---|'];
  for (const [event, spec] of rows) {
    const errors = [...new Set(spec.errors)].filter((c) => !COMMON_CODES.includes(c));
    lines.push(
      `| ${code(event)} | ${cell(code(outline(spec.payload)))} | ${cell(code(outline(spec.ack)))} | ${errors.map(code).join(', ') || '—'} | ${cell(spec.doc)} |`,
    );
  }
  return lines.join('\n');
}

function serverTable(section: Section): string {
  const rows = Object.entries(SERVER_EVENT_SPECS as Record<string, ServerEventSpec>).filter(([, spec]) => spec.section === section);
  const lines = ['| event | to | payload | what |', '|---|---|---|---|'];
  for (const [event, spec] of rows) lines.push(`| ${code(event)} | ${cell(spec.to)} | ${cell(code(outline(spec.payload)))} | ${cell(spec.doc)} |`);
  return lines.join('\n');
}

function errorTable(surface: 'rest' | 'signaling'): string {
  const entries = Object.entries(ERRORS as Record<ErrorCode, ErrorSpec>).filter(([, spec]) => spec[surface] !== undefined);
  const lines = surface === 'rest' ? ['| code | HTTP | when |', '|---|---|---|'] : ['| code | meaning |', '|---|---|'];
  for (const [c, spec] of entries.sort(([a, x], [b, y]) => x.status - y.status || a.localeCompare(b))) {
    const other = surface === 'rest' ? spec.signaling : spec.rest;
    const text = spec[surface] === 'as in REST' || spec[surface] === 'as in signaling' ? `${spec[surface]}: ${other ?? ''}` : spec[surface]!;
    lines.push(surface === 'rest' ? `| ${code(c)} | ${spec.status} | ${cell(text)} |` : `| ${code(c)} | ${cell(text)} |`);
  }
  return lines.join('\n');
}

const SHAPES: Record<string, TSchema> = {
  RoomState,
  ParticipantState,
  ProducerInfo,
  IceServer,
  TransportInfo,
  ConsumeOk,
  RecordingFinished,
  RecordingFile,
  ChatMessage,
};

function shapesTable(): string {
  const lines = ['| shape | fields |', '|---|---|'];
  for (const [name, schema] of Object.entries(SHAPES)) lines.push(`| ${code(name)} | ${cell(code(outline(schema)))} |`);
  return lines.join('\n');
}

/** Every generated block, by marker name. */
export function generatedBlocks(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of SECTIONS) {
    out[`client-events:${s}`] = clientTable(s);
    out[`server-events:${s}`] = serverTable(s);
  }
  out.shapes = shapesTable();
  out['errors:signaling'] = errorTable('signaling');
  out['errors:rest'] = errorTable('rest');
  return out;
}

const BLOCK = /<!-- generated:([a-z:-]+) -->\n[\s\S]*?<!-- \/generated -->/g;

/** The document with each marked block replaced by its rendering; throws on an unknown marker. */
export function renderDocument(text: string, blocks = generatedBlocks()): string {
  return text.replace(BLOCK, (_m, name: string) => {
    const body = blocks[name];
    if (body === undefined) throw new Error(`unknown generated block ${name}`);
    return `<!-- generated:${name} -->\n${body}\n<!-- /generated -->`;
  });
}

/** The marker names a document holds. */
export function markersOf(text: string): string[] {
  return [...text.matchAll(BLOCK)].map((m) => m[1]!);
}

/** The documents that hold generated blocks, relative to the repository root. */
export const GENERATED_DOCUMENTS = ['server/signaling/protocol.md', 'docs/errors.md'] as const;
