import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CLIENT_EVENTS, ERROR_CODES, ERRORS, SERVER_EVENTS } from '../protocol';
import { GENERATED_DOCUMENTS, generatedBlocks, markersOf, renderDocument } from '../protocol/docs';

/** The documentation cannot drift from the declarations: its tables are generated, and stale ones fail here. */
const root = path.resolve(__dirname, '..', '..');
const read = (rel: string) => readFileSync(path.join(root, rel), 'utf8');

describe('generated documentation', () => {
  it.each(GENERATED_DOCUMENTS)('%s is up to date (run npm run docs)', (rel) => {
    expect(renderDocument(read(rel))).toBe(read(rel));
  });

  it('holds every generated block, once', () => {
    const markers = GENERATED_DOCUMENTS.flatMap((rel) => markersOf(read(rel)));
    expect([...markers].sort()).toEqual(Object.keys(generatedBlocks()).sort());
  });

  it('lists every client and server event and every error code', () => {
    const docs = GENERATED_DOCUMENTS.map(read).join('\n');
    for (const e of [...CLIENT_EVENTS, ...SERVER_EVENTS]) expect(docs).toContain(`| \`${e}\` |`);
    for (const c of ERROR_CODES) expect(docs).toContain(`| \`${c}\` |`);
  });

  it('fails when a declaration changes without regenerating', () => {
    const text = read('server/signaling/protocol.md');
    const blocks = generatedBlocks();
    blocks['client-events:call'] += '\n| `new-event` | `{}` | `{}` | — | added |';
    expect(renderDocument(text, blocks)).not.toBe(text);
  });

  it('gives every code a status and a surface', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect('rest' in spec || 'signaling' in spec).toBe(true);
      expect(code).toMatch(/^[A-Z][A-Z_]+$/);
    }
  });
});
