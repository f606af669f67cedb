import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { InvalidLinkError } from '../errors.js'
import type { Executor } from '../storage/database.js'

// Single-use links sent by mail (or handed out by an Owner/Admin when mail is off): email
// verification (valid 24 h) and password reset (valid 1 h). The token is 32 random bytes;
// only its SHA-256 is stored, so a copy of the database holds no usable link.

export type LinkPurpose = 'verify' | 'reset'

/** How long a link of each purpose stays valid. */
export const LINK_LIFETIME_MS: Record<LinkPurpose, number> = { verify: 24 * 3_600_000, reset: 3_600_000 }

/** The page each kind of link opens. */
export const LINK_PATH: Record<LinkPurpose, string> = { verify: '/verify-email', reset: '/reset-password' }

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/

function hashLinkToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/**
 * Issues a link token for `userId`. A new reset link voids the person's older unused reset
 * links (the newest mail is the one that works).
 */
export async function issueLink(
  db: Executor,
  userId: string,
  purpose: LinkPurpose,
  now: Date,
): Promise<{ token: string; expiresAt: string }> {
  const token = randomBytes(32).toString('base64url')
  const expiresAt = new Date(now.getTime() + LINK_LIFETIME_MS[purpose]).toISOString()
  if (purpose === 'reset') {
    await db
      .updateTable('email_links')
      .set({ used_at: now.toISOString() })
      .where('user_id', '=', userId)
      .where('purpose', '=', 'reset')
      .where('used_at', 'is', null)
      .execute()
  }
  await db
    .insertInto('email_links')
    .values({
      id: randomUUID(),
      token_hash: hashLinkToken(token),
      user_id: userId,
      purpose,
      created_at: now.toISOString(),
      expires_at: expiresAt,
      used_at: null,
    })
    .execute()
  return { token, expiresAt }
}

/** The full URL a person opens for a link token. */
export function linkUrl(publicUrl: string, purpose: LinkPurpose, token: string): string {
  return `${publicUrl}${LINK_PATH[purpose]}?token=${encodeURIComponent(token)}`
}

/**
 * Uses a link: marks it used (atomically: of two concurrent uses only one succeeds) and
 * returns its person. Unknown, used, expired and wrong-purpose tokens all throw
 * InvalidLinkError — and so does a link whose person joined a workspace after it was made.
 * @NOTE an Owner/Admin hands out links (mail off) only for people of their workspace alone;
 * the link must not open a workspace the person joined while it waited. Runs in the system
 * scope (memberships span workspaces).
 */
export async function consumeLink(db: Executor, token: string, purpose: LinkPurpose, now: Date): Promise<string> {
  if (!TOKEN_RE.test(token)) throw new InvalidLinkError()
  const hash = hashLinkToken(token)
  const row = await db
    .selectFrom('email_links')
    .select(['id', 'user_id', 'created_at', 'expires_at', 'used_at', 'purpose'])
    .where('token_hash', '=', hash)
    .executeTakeFirst()
  if (!row || row.used_at || row.purpose !== purpose || Date.parse(row.expires_at) <= now.getTime()) throw new InvalidLinkError()
  const joinedSince = await db
    .selectFrom('memberships')
    .select('workspace_id')
    .where('user_id', '=', row.user_id)
    .where('created_at', '>', row.created_at)
    .executeTakeFirst()
  if (joinedSince) throw new InvalidLinkError()
  const r = await db
    .updateTable('email_links')
    .set({ used_at: now.toISOString() })
    .where('id', '=', row.id)
    .where('used_at', 'is', null)
    .executeTakeFirst()
  if (Number(r.numUpdatedRows) !== 1) throw new InvalidLinkError()
  return row.user_id
}
