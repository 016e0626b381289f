// Prisma CLI configuration (Prisma 7 keeps the connection URL out of the schema).
// The server itself never reads this file: it builds its client in server/db.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost:5432/switchboard' },
});
