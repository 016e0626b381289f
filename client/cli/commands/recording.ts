/** `switchboard recording list|download`: recorded files (GET /recordings, GET /recordings/:id/download). */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { EXIT_OK, intOption, parse, query, rest, server, SERVER_HELP, SERVER_OPTIONS, table, usageError, type Command } from '../shared';

const HELP = `Usage:
  switchboard recording list [--call CALL_ID] [--room ROOM] [--status STATUS] [--limit N]
  switchboard recording download RECORDING_ID [-o FILE]

list: recorded files, newest first. download: one file (to FILE, default <id>.<ext>; '-' for stdout).
${SERVER_HELP}`;

interface RecordingRow {
  id: string;
  call_id: string;
  room_id?: string;
  kind?: string;
  status: string;
  mime_type: string;
  size_bytes: number | null;
  duration_ms: number | null;
  started_at?: string;
}

const EXT: Record<string, string> = { 'video/webm': 'webm', 'audio/webm': 'webm', 'video/mp4': 'mp4', 'audio/mp4': 'm4a', 'audio/ogg': 'ogg' };

export const recordingCommand: Command = {
  name: 'recording',
  summary: 'recording list|download                     list and download recordings',
  async run(argv, io) {
    const { values, positionals } = parse(
      argv,
      {
        ...SERVER_OPTIONS,
        call: { type: 'string' },
        room: { type: 'string' },
        status: { type: 'string' },
        limit: { type: 'string' },
        output: { type: 'string', short: 'o' },
      },
      true,
    );
    if (values.help) {
      io.out(HELP);
      return EXIT_OK;
    }
    const [sub, id, ...extra] = positionals;
    if (extra.length > 0) throw usageError(`unexpected '${extra.join(' ')}'`);
    if (sub === 'list') {
      if (id) throw usageError(`unexpected '${id}'`);
      const limit = intOption('limit', values.limit, 1, 100);
      const s = server(values, io.env);
      const { data } = await rest<{ items: RecordingRow[]; next_cursor: string | null }>(
        s,
        'GET',
        `/recordings${query({ call_id: values.call, room_id: values.room, status: values.status, limit })}`,
      );
      if (values.json) io.out(JSON.stringify(data, null, 2));
      else if (data.items.length === 0) io.out('no recordings');
      else
        for (const line of table([
          ['ID', 'CALL', 'STATUS', 'TYPE', 'BYTES', 'DURATION'],
          ...data.items.map((r) => [
            r.id,
            r.call_id,
            r.status,
            r.mime_type,
            r.size_bytes === null ? '' : String(r.size_bytes),
            r.duration_ms === null ? '' : `${(r.duration_ms / 1000).toFixed(1)}s`,
          ]),
        ]))
          io.out(line);
      return EXIT_OK;
    }
    if (sub === 'download') {
      if (!id) throw usageError('recording download needs a RECORDING_ID');
      const s = server(values, io.env);
      const { res } = await rest<undefined>(s, 'GET', `/recordings/${encodeURIComponent(id)}/download`);
      const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
      const file = values.output ?? `${id}.${EXT[type] ?? 'bin'}`;
      if (!res.body) throw usageError('the server sent no body');
      const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
      if (file === '-') await pipeline(body, process.stdout);
      else {
        await pipeline(body, createWriteStream(file));
        io.err(`saved ${file} (${res.headers.get('content-length') ?? '?'} bytes, ${type})`);
      }
      return EXIT_OK;
    }
    throw usageError(sub ? `unknown subcommand 'recording ${sub}'; try: switchboard recording --help` : 'recording needs a subcommand: list or download');
  },
};
