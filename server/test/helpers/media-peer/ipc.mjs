// A test peer's side of IPC with its parent: replies and unsolicited messages, and errors
// reported while the peer keeps running (the parent counts and logs them).

/** Sends `msg` to the parent, if it is still there. */
export function send(msg) {
  try {
    if (process.connected) process.send(msg);
  } catch {
    /* parent gone */
  }
}

/** An error as plain data for IPC. */
export function errInfo(err) {
  if (err instanceof Error) return { message: err.message, name: err.name, stack: err.stack };
  return { message: typeof err === 'string' ? err : JSON.stringify(err) };
}

let errorCount = 0;

/** Tells the parent about an error the peer survives ({ type: 'error', where, error }). */
export function report(where, err) {
  errorCount += 1;
  send({ type: 'error', where, error: errInfo(err) });
}

/** How many errors were reported so far (in stats). */
export const errorsReported = () => errorCount;
