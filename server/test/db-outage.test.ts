import { isDatabaseOutage } from '../lib/dbOutage';

/** The classifier behind 503 DATABASE_UNAVAILABLE and write-behind retries; the real shapes are exercised in faults-postgres.test.ts. */
describe('isDatabaseOutage', () => {
  const prisma = (code: string, sqlstate?: string) =>
    Object.assign(new Error('x'), {
      name: 'PrismaClientKnownRequestError',
      code,
      meta: sqlstate ? { driverAdapterError: { cause: { originalCode: sqlstate } } } : {},
    });

  it.each([
    ['an unreachable server (P1001)', prisma('P1001')],
    ['a statement timeout (57014)', prisma('P2010', '57014')],
    ['an administrator shutdown (57P01)', prisma('P2010', '57P01')],
    ['a dropped database (3D000)', prisma('P2010', '3D000')],
    ['an exhausted pool (P2024)', prisma('P2024')],
    ["pg's client-side query timeout", new Error('Query read timeout')],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['a closed embedded database', new Error('PGlite is closed')],
    ['an outage as the cause of another error', Object.assign(new Error('wrapped'), { cause: prisma('P1001') })],
  ])('is true for %s', (_, err) => {
    expect(isDatabaseOutage(err)).toBe(true);
  });

  it.each([
    ['a unique violation (P2002)', prisma('P2002', '23505')],
    ['a record not found (P2025)', prisma('P2025')],
    ['a bad value (22P02)', prisma('P2010', '22P02')],
    ['a programming error', new TypeError('x is undefined')],
    ['not an error', 'boom'],
  ])('is false for %s', (_, err) => {
    expect(isDatabaseOutage(err)).toBe(false);
  });
});
