#!/usr/bin/env node
/**
 * `switchboard`: a command-line tool for a Switchboard server (the root
 * package's `bin`; `npx switchboard --help` in a clone after setup). One
 * command per file in commands/; shared.ts holds the server options, REST
 * calls and exit codes (0 done, 1 the server refused: its code and message
 * on stderr, 2 a wrong command line).
 */
import { callCommand } from './commands/call';
import { loadTestCommand } from './commands/loadTest';
import { recordingCommand } from './commands/recording';
import { tokenCommand } from './commands/token';
import { CliError, EXIT_OK, EXIT_SERVER, EXIT_USAGE, SERVER_HELP, type Command, type Io } from './shared';

const COMMANDS: Command[] = [tokenCommand, callCommand, recordingCommand, loadTestCommand];

const HELP = `Usage: switchboard <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.summary}`).join('\n')}

Run switchboard <command> --help for a command's options.
Exit codes: 0 done, 1 the server refused or failed (its error code and message are printed), 2 a wrong command line.
${SERVER_HELP}`;

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(HELP);
    return name ? EXIT_OK : EXIT_USAGE;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`switchboard: unknown command '${name}'\n${HELP}`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof CliError) {
      io.err(
        err.exitCode === EXIT_USAGE
          ? `switchboard ${name}: ${err.message} (see switchboard ${name} --help)`
          : `switchboard ${name}: ${err.code}: ${err.message}`,
      );
      return err.exitCode;
    }
    io.err(`switchboard ${name}: ${(err as Error).stack ?? String(err)}`);
    return EXIT_SERVER;
  }
}

if (require.main === module) {
  const io: Io = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`), env: process.env };
  main(process.argv.slice(2), io).then(
    // Exit explicitly: wrtc (load-test) keeps native threads alive, and may crash at a natural exit.
    (code) => process.stdout.write('', () => process.exit(code)),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(EXIT_SERVER);
    },
  );
}
