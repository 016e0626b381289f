/** `switchboard call list|get|end`: the calls REST API (GET /calls, GET /calls/:id, POST /calls/:id/end). */
import {
  CliError,
  EXIT_OK,
  EXIT_SERVER,
  intOption,
  parse,
  query,
  rest,
  server,
  SERVER_HELP,
  SERVER_OPTIONS,
  table,
  usageError,
  type Command,
  type Server,
} from '../shared';

const HELP = `Usage:
  switchboard call list [--status created|active|ended] [--room ROOM] [--limit N]
  switchboard call get  (CALL_ID | --room ROOM)
  switchboard call end  (CALL_ID | --room ROOM)

list: the calls, newest first. get: one call with its participants.
end: ends a call for everyone. With --room, get and end act on the room's latest call
(CALL_NOT_FOUND when the room has none).
${SERVER_HELP}`;

interface CallSummary {
  id: string;
  room_id: string;
  status: string;
  mode: string;
  recording: boolean;
  created_at: string;
  participant_count: number;
}
interface CallDetail extends Omit<CallSummary, 'participant_count'> {
  participants: Array<{ id: string; user_id: string; display_name: string | null; role: string; joined_at: string; left_at: string | null }>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The call named by an id, or the latest call of --room. */
async function callId(s: Server, positional: string | undefined, room: string | undefined): Promise<string> {
  if (positional && room) throw usageError('give a call id or --room, not both');
  if (positional) {
    if (!UUID.test(positional)) throw usageError(`'${positional}' is not a call id (a UUID); use --room ROOM for a room's call`);
    return positional;
  }
  if (!room) throw usageError('give a call id or --room ROOM');
  const { data } = await rest<{ items: CallSummary[] }>(s, 'GET', `/calls${query({ room_id: room, limit: 1 })}`);
  const call = data.items[0];
  if (!call) throw new CliError(EXIT_SERVER, 'CALL_NOT_FOUND', `room '${room}' has no call`);
  return call.id;
}

export const callCommand: Command = {
  name: 'call',
  summary: 'call list|get|end                           list, show and end calls',
  async run(argv, io) {
    const { values, positionals } = parse(argv, { ...SERVER_OPTIONS, status: { type: 'string' }, room: { type: 'string' }, limit: { type: 'string' } }, true);
    if (values.help) {
      io.out(HELP);
      return EXIT_OK;
    }
    const [sub, id, ...rest_] = positionals;
    if (rest_.length > 0) throw usageError(`unexpected '${rest_.join(' ')}'`);
    if (sub === 'list') {
      if (id) throw usageError(`unexpected '${id}'`);
      const limit = intOption('limit', values.limit, 1, 100);
      const s = server(values, io.env);
      const { data } = await rest<{ items: CallSummary[]; next_cursor: string | null }>(
        s,
        'GET',
        `/calls${query({ status: values.status, room_id: values.room, limit })}`,
      );
      if (values.json) io.out(JSON.stringify(data, null, 2));
      else if (data.items.length === 0) io.out('no calls');
      else
        for (const line of table([
          ['ID', 'ROOM', 'STATUS', 'MODE', 'PARTICIPANTS', 'RECORDING', 'CREATED'],
          ...data.items.map((c) => [c.id, c.room_id, c.status, c.mode, String(c.participant_count), c.recording ? 'yes' : 'no', c.created_at]),
        ]))
          io.out(line);
      return EXIT_OK;
    }
    if (sub === 'get' || sub === 'end') {
      const s = server(values, io.env);
      const target = await callId(s, id, values.room);
      if (sub === 'end') {
        const { data } = await rest<unknown>(s, 'POST', `/calls/${target}/end`);
        io.out(values.json ? JSON.stringify(data, null, 2) : `ended ${target}`);
        return EXIT_OK;
      }
      const { data } = await rest<CallDetail>(s, 'GET', `/calls/${target}`);
      if (values.json) {
        io.out(JSON.stringify(data, null, 2));
        return EXIT_OK;
      }
      io.out(`call ${data.id}  room ${data.room_id}  ${data.status}  ${data.mode}${data.recording ? '  recording' : ''}  created ${data.created_at}`);
      if (data.participants.length === 0) io.out('no participants');
      else
        for (const line of table([
          ['PARTICIPANT', 'USER', 'NAME', 'ROLE', 'JOINED', 'LEFT'],
          ...data.participants.map((p) => [p.id, p.user_id, p.display_name ?? '', p.role, p.joined_at, p.left_at ?? '']),
        ]))
          io.out(line);
      return EXIT_OK;
    }
    throw usageError(sub ? `unknown subcommand 'call ${sub}'; try: switchboard call --help` : 'call needs a subcommand: list, get or end');
  },
};
