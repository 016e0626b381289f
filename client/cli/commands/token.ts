/** `switchboard token create`: a token for one user of one room (POST /auth/token). */
import { EXIT_OK, intOption, parse, rest, server, SERVER_HELP, SERVER_OPTIONS, usageError, type Command } from '../shared';

const ROLES = ['host', 'moderator', 'participant'];

const HELP = `Usage: switchboard token create --room ROOM [--role ROLE] [--ttl SECONDS] [--user ID] [--name NAME]

Issues a signed token for one user of one room and prints it (only the token, so
TOKEN=$(switchboard token create --room standup) works; --json prints the whole answer).

Options:
  --room ROOM        the room the token is for (required)
  --role ROLE        host, moderator or participant (default participant)
  --ttl SECONDS      lifetime, 10 up to the server's TOKEN_MAX_TTL_SECONDS (default 3600)
  --user ID          the user id (default: cli-<random>)
  --name NAME        the display name
  --viewer           a token that may not publish (can_publish: false)
${SERVER_HELP}`;

export const tokenCommand: Command = {
  name: 'token',
  summary: 'token create --room R [--role R] [--ttl S]   issue a token',
  async run(argv, io) {
    const { values, positionals } = parse(
      argv,
      {
        ...SERVER_OPTIONS,
        room: { type: 'string' },
        role: { type: 'string' },
        ttl: { type: 'string' },
        user: { type: 'string' },
        name: { type: 'string' },
        viewer: { type: 'boolean' },
      },
      true,
    );
    if (values.help) {
      io.out(HELP);
      return EXIT_OK;
    }
    if (positionals[0] !== 'create' || positionals.length > 1)
      throw usageError(`unknown subcommand '${positionals.join(' ')}'; try: switchboard token create --help`);
    if (!values.room) throw usageError('--room is required');
    const role = values.role ?? 'participant';
    if (!ROLES.includes(role)) throw usageError(`--role must be one of ${ROLES.join(', ')}, got '${role}'`);
    const ttl = intOption('ttl', values.ttl, 1, 365 * 86_400) ?? 3600;
    const s = server(values, io.env);
    const { data } = await rest<{ token: string; expires_at: string }>(s, 'POST', '/auth/token', {
      user_id: values.user ?? `cli-${Math.random().toString(36).slice(2, 10)}`,
      room: values.room,
      role,
      ttl_seconds: ttl,
      ...(values.name ? { display_name: values.name } : {}),
      ...(values.viewer ? { can_publish: false } : {}),
    });
    io.out(values.json ? JSON.stringify(data, null, 2) : data.token);
    return EXIT_OK;
  },
};
