import type { ChangeOp, Proposal } from '../../access/change-requests.js'
import type { SecretApply, SecretBulkWrite, SecretRollback, SecretWrite } from '../../api/secrets.js'
import { EnvironmentChangedError, InternalError, NotFoundError, ValidationError, VersionConflictError } from '../../errors.js'
import type { SecretScope } from '../../vault/secret-service.js'
import type { HandlerContext } from '../route.js'

// What each secret write proposes when its environment is protected (RouteDef.propose): the
// operations it would perform, against the versions the keys have now, checked as the write
// itself would check them (a wrong ifVersion is refused now, not at approval time).

type Ctx<P, Q, B> = HandlerContext<P, Q, B>

function scopeOf(ctx: Ctx<unknown, unknown, unknown>): SecretScope {
  const t = ctx.target
  if (!t.project || !t.environment) throw new InternalError('a proposal without its environment')
  return { workspaceId: ctx.workspace.id, projectId: t.project.id, environmentId: t.environment.id }
}

/** The key's current version, refusing a check-and-set `ifVersion` that is not it. */
async function baseOf(ctx: Ctx<unknown, unknown, unknown>, key: string, ifVersion: number | undefined): Promise<number> {
  const current = (await ctx.app.secrets.versionsOf(ctx.db, scopeOf(ctx), [key])).get(key) ?? 0
  if (ifVersion !== undefined && ifVersion !== current) throw new VersionConflictError(current)
  return current
}

/** PUT …/secrets/:key */
export async function proposeSet(ctx: Ctx<{ key: string }, unknown, SecretWrite>): Promise<Proposal> {
  const { key } = ctx.params
  const b = ctx.body
  const baseVersion = await baseOf(ctx, key, b.ifVersion)
  return { kind: 'set', ops: [{ op: 'set', key, baseVersion, value: b.value, comment: b.comment ?? null, tags: b.tags ?? [] }] }
}

/** POST …/secrets (bulk) */
export async function proposeBulk(ctx: Ctx<unknown, unknown, SecretBulkWrite>): Promise<Proposal> {
  const keys = ctx.body.secrets.map((s) => s.key)
  const dup = keys.find((k, i) => keys.indexOf(k) !== i)
  if (dup) throw new ValidationError(`The key ${dup} appears twice.`, [{ path: 'secrets', message: `duplicate key ${dup}` }])
  const versions = await ctx.app.secrets.versionsOf(ctx.db, scopeOf(ctx), keys)
  return {
    kind: 'bulk',
    ops: ctx.body.secrets.map((s) => ({
      op: 'set' as const,
      key: s.key,
      baseVersion: versions.get(s.key) ?? 0,
      value: s.value,
      comment: s.comment ?? null,
      tags: s.tags ?? [],
    })),
  }
}

/** DELETE …/secrets/:key */
export async function proposeDelete(ctx: Ctx<{ key: string }, { ifVersion?: number | undefined }, unknown>): Promise<Proposal> {
  const { key } = ctx.params
  const live = await ctx.app.secrets.liveKeys(ctx.db, scopeOf(ctx))
  if (!live.includes(key)) throw new NotFoundError('secret')
  return { kind: 'delete', ops: [{ op: 'delete', key, baseVersion: await baseOf(ctx, key, ctx.query.ifVersion) }] }
}

/** POST …/secrets/:key/rollback */
export async function proposeRollback(ctx: Ctx<{ key: string }, unknown, SecretRollback>): Promise<Proposal> {
  const { key } = ctx.params
  const h = await ctx.app.secrets.history(ctx.db, scopeOf(ctx), key, { reveal: false })
  const v = h.versions.find((x) => x.version === ctx.body.version)
  if (!v) throw new NotFoundError('secret version')
  if (v.deleted)
    throw new ValidationError('That version is a deletion; roll back to a version with a value.', [
      { path: 'version', message: 'is a deletion' },
    ])
  const baseVersion = await baseOf(ctx, key, ctx.body.ifVersion)
  return { kind: 'rollback', ops: [{ op: 'rollback', key, baseVersion, toVersion: ctx.body.version }] }
}

/** POST …/secrets/apply: a dry run is answered as usual (null); a write proposes its adds, changes and deletes. */
export async function proposeApply(ctx: Ctx<unknown, unknown, SecretApply>): Promise<Proposal | null> {
  if (ctx.body.dryRun) return null
  const scope = scopeOf(ctx)
  const r = await ctx.app.secrets.apply(ctx.db, scope, 'proposal', { ...ctx.body, dryRun: true })
  if (ctx.body.ifState !== undefined && ctx.body.ifState !== r.state) throw new EnvironmentChangedError(r.state)
  const values = new Map(ctx.body.upserts.map((u) => [u.key, u.value]))
  // A changed value keeps its comment and tags, as the write itself does.
  const kept = new Map(
    (
      await ctx.app.secrets.contentsOf(
        ctx.db,
        scope,
        r.changes.map((c) => c.key),
      )
    ).map((c) => [c.key, c]),
  )
  const ops: ChangeOp[] = [
    ...r.adds.map((a) => ({
      op: 'set' as const,
      key: a.key,
      baseVersion: a.version,
      value: values.get(a.key) ?? '',
      comment: null,
      tags: [],
    })),
    ...r.changes.map((c) => ({
      op: 'set' as const,
      key: c.key,
      baseVersion: c.version,
      value: values.get(c.key) ?? '',
      comment: kept.get(c.key)?.comment ?? null,
      tags: kept.get(c.key)?.tags ?? [],
    })),
    ...r.deletes.map((d) => ({ op: 'delete' as const, key: d.key, baseVersion: d.version })),
  ]
  if (ops.length === 0) return null
  return { kind: 'apply', ops }
}
