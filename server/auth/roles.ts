import type { Role } from '../protocol';

export { ROLES, isRole, type Role } from '../protocol';

/**
 * Who is making a request. `admin` is the application's backend, authenticated
 * by an API key; `user` is an end user holding a token this server issued.
 */
export type Principal =
  { kind: 'admin' } | { kind: 'user'; userId: string; name?: string; room?: string; role: Role; tokenId: string; expiresAt: number; canPublish: boolean };
