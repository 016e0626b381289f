/** Roles in a call, from most to least privileged. Enforced on the server. */
export const ROLES = ['host', 'moderator', 'participant'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (v: unknown): v is Role => typeof v === 'string' && (ROLES as readonly string[]).includes(v);

/**
 * Who is making a request. `admin` is the application's backend, authenticated
 * by an API key; `user` is an end user holding a token this server issued.
 */
export type Principal =
  | { kind: 'admin' }
  | { kind: 'user'; userId: string; name?: string; room?: string; role: Role; tokenId: string; expiresAt: number; canPublish: boolean };
