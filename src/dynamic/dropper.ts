import { randomUUID } from 'node:crypto'
import type { AuditActor, AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../ops/clock.js'
import type { OutboundClient } from '../ops/outbound.js'
import type { Store } from '../storage/database.js'
import { SYSTEM_SCOPE, writeInScope } from '../storage/tenant-scope.js'
import type { DataKeys } from '../vault/data-keys.js'
import { adminUrlOf, dropLoginRole } from './database-roles.js'

// Drops the login roles of dynamic database credentials once they expire, on every node's
// behalf: a node claims expired leases under a lease of its own (SKIP LOCKED on PostgreSQL),
// drops each role on its server, and records it (audited). A role whose server refuses is
// tried again on the next run; a deleted db role is forgotten once its last login role is gone.

const SYSTEM_ACTOR: AuditActor = { type: 'system', id: 'db-credentials', ip: '', userAgent: '' }
const CLAIM = 20
const LEASE_MS = 60_000

export class DbRoleDropper {
  readonly node = `dropper-${randomUUID()}`
  readonly #d: { store: Store; keys: DataKeys; outbound: OutboundClient; audit: AuditLog; clock: Clock }

  constructor(deps: { store: Store; keys: DataKeys; outbound: OutboundClient; audit: AuditLog; clock: Clock }) {
    this.#d = deps
  }

  /** Drops what is due; returns how many roles were dropped. */
  async run(): Promise<number> {
    const { store, clock } = this.#d
    const now = clock()
    const at = now.toISOString()
    const claimed = await writeInScope(store, store.db, SYSTEM_SCOPE, async (tx) => {
      let due = tx
        .selectFrom('db_leases')
        .select('id')
        .where('dropped_at', 'is', null)
        .where('expires_at', '<=', at)
        .where((eb) => eb.or([eb('dropper_until', 'is', null), eb('dropper_until', '<', at)]))
        .orderBy('expires_at')
        .limit(CLAIM)
      if (store.engine === 'postgres') due = due.forUpdate().skipLocked()
      const ids = (await due.execute()).map((r) => r.id)
      if (!ids.length) return []
      return tx
        .updateTable('db_leases')
        .set({ dropper: this.node, dropper_until: new Date(now.getTime() + LEASE_MS).toISOString() })
        .where('id', 'in', ids)
        .returning(['id', 'workspace_id', 'role_id', 'username'])
        .execute()
    })
    let dropped = 0
    for (const l of claimed) if (await this.#drop(l)) dropped++
    return dropped
  }

  async #drop(l: { id: string; workspace_id: string; role_id: string; username: string }): Promise<boolean> {
    const { store, keys, outbound, audit, clock } = this.#d
    let error: string | null = null
    try {
      const role = await writeInScope(store, store.db, l.workspace_id, (tx) =>
        tx.selectFrom('db_roles').select(['id', 'admin_url_ct']).where('id', '=', l.role_id).executeTakeFirst(),
      )
      if (role) {
        const url = await writeInScope(store, store.db, l.workspace_id, (tx) =>
          adminUrlOf(tx, keys, l.workspace_id, role.id, role.admin_url_ct),
        )
        await dropLoginRole(outbound, url, l.username)
      }
    } catch (err) {
      error = (err as { code?: string }).code ?? 'ERR_DB_CREDENTIALS'
    }
    const at = clock().toISOString()
    await writeInScope(store, store.db, l.workspace_id, async (tx) => {
      const u = await tx
        .updateTable('db_leases')
        .set(
          error
            ? { drop_error: error, dropper: null, dropper_until: null }
            : { dropped_at: at, drop_error: null, dropper: null, dropper_until: null },
        )
        .where('id', '=', l.id)
        .where('dropper', '=', this.node)
        .executeTakeFirst()
      if (error || Number(u.numUpdatedRows) === 0) return
      await audit.append(tx, l.workspace_id, SYSTEM_ACTOR, `db-drop-${l.id}`, {
        action: 'db.credentials_dropped',
        target: { type: 'db_role', id: l.role_id },
        details: { username: l.username, lease: l.id },
      })
      // A deleted db role goes once nothing made from it is left (its leases stay, as history).
      const live = await tx
        .selectFrom('db_leases')
        .select('id')
        .where('role_id', '=', l.role_id)
        .where('dropped_at', 'is', null)
        .executeTakeFirst()
      if (!live) await tx.deleteFrom('db_roles').where('id', '=', l.role_id).where('deleted_at', 'is not', null).execute()
    })
    return error === null
  }
}
