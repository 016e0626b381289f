import pino from 'pino';
import { WriteBehind } from '../rooms/writeBehind';

const log = pino({ level: 'silent' });
const outage = () => Object.assign(new Error("Can't reach database server"), { name: 'PrismaClientKnownRequestError', code: 'P1001' });

describe('WriteBehind', () => {
  it('retries a write through an outage, in order per key, and refuses new joins past its bound', async () => {
    let down = true;
    const written: string[] = [];
    const backlog: number[] = [];
    const wb = new WriteBehind(log, { maxPending: 3, retryMinMs: 5, retryMaxMs: 20, onBacklog: (n) => backlog.push(n) });
    const write = (what: string) => async () => {
      if (down) throw outage();
      written.push(what);
    };
    wb.enqueue('p1', 'join', write('p1 join'));
    wb.enqueue('p1', 'leave', write('p1 leave'));
    expect(wb.saturated).toBe(false);
    wb.enqueue('p2', 'join', write('p2 join'));
    expect(wb.saturated).toBe(true);
    expect(() => wb.assertAccepting()).toThrow(expect.objectContaining({ code: 'DATABASE_UNAVAILABLE' }));
    expect(await wb.flush(100)).toBe(false);
    down = false;
    expect(await wb.flush(2000)).toBe(true);
    expect(written.filter((w) => w.startsWith('p1'))).toEqual(['p1 join', 'p1 leave']);
    expect(written).toHaveLength(3);
    expect(wb.pending).toBe(0);
    expect(backlog.at(-1)).toBe(0);
    expect(() => wb.assertAccepting()).not.toThrow();
  });

  it('does not retry a failure that is not an outage, and counts it', async () => {
    let failures = 0;
    let calls = 0;
    const wb = new WriteBehind(log, { onFailure: () => failures++, retryMinMs: 5 });
    wb.enqueue('p', 'bad', async () => {
      calls++;
      throw Object.assign(new Error('unique'), { name: 'PrismaClientKnownRequestError', code: 'P2002' });
    });
    await wb.flush();
    expect({ calls, failures }).toEqual({ calls: 1, failures: 1 });
  });

  it('stops retrying at shutdown and reports each write left as not written', async () => {
    let failures = 0;
    const wb = new WriteBehind(log, { onFailure: () => failures++, retryMinMs: 5, retryMaxMs: 10 });
    wb.enqueue('p', 'join', async () => {
      throw outage();
    });
    expect(await wb.flush(50)).toBe(false);
    expect(wb.stop()).toBe(1);
    expect(await wb.flush(1000)).toBe(true);
    expect(failures).toBe(1);
  });
});
