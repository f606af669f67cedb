import type { Executor } from '../storage/database.js'

// Last-used times of credentials, recorded cheaply: a credential's row is written at most
// once a minute, and only when a request finds its time older than that — so a busy token
// costs one small write a minute, not one per request.

/** How fresh a recorded last-used time is kept. */
export const LAST_USED_GRANULARITY_MS = 60_000

/** A credential a request was authenticated with, and when it was last recorded as used. */
export interface CredentialUse {
  readonly table: 'tokens' | 'service_tokens' | 'machine_tokens'
  readonly id: string
  readonly lastUsedAt: string | null
  /** For machine access tokens: the identity, whose last use is recorded too. */
  readonly machineId?: string
}

/** Whether this use should be written (the recorded time is missing or a minute old). */
export function useIsStale(use: CredentialUse, now: Date): boolean {
  return use.lastUsedAt === null || Date.parse(use.lastUsedAt) <= now.getTime() - LAST_USED_GRANULARITY_MS
}

/** Records the use (a no-op if another node already did within the minute). */
export async function recordUse(db: Executor, use: CredentialUse, now: Date): Promise<void> {
  const at = now.toISOString()
  const cutoff = new Date(now.getTime() - LAST_USED_GRANULARITY_MS).toISOString()
  switch (use.table) {
    case 'tokens':
      await db
        .updateTable('tokens')
        .set({ last_used_at: at })
        .where('id', '=', use.id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', cutoff)]))
        .execute()
      break
    case 'service_tokens':
      await db
        .updateTable('service_tokens')
        .set({ last_used_at: at })
        .where('id', '=', use.id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', cutoff)]))
        .execute()
      break
    case 'machine_tokens':
      await db
        .updateTable('machine_tokens')
        .set({ last_used_at: at })
        .where('id', '=', use.id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', cutoff)]))
        .execute()
      if (use.machineId) await db.updateTable('machine_identities').set({ last_used_at: at }).where('id', '=', use.machineId).execute()
      break
  }
}
