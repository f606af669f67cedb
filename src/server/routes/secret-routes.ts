import { z } from 'zod'
import type { AuditAction } from '../../audit/actions.js'
import {
  environmentStateResponse,
  secretApplyBody,
  secretApplyResponse,
  secretBulkWriteBody,
  secretCopyBody,
  secretCopyResponse,
  secretHistoryResponse,
  secretListResponse,
  secretResponse,
  secretRollbackBody,
  secretWriteBody,
} from '../../api/secrets.js'
import { Sensitive, type AuditEvent } from '../../audit/audit-log.js'
import { breakGlassDecision, grantUseEvent } from '../../access/break-glass.js'
import { actorId, authorize, decide } from '../../access/policy.js'
import { resolveTarget } from '../../access/target.js'
import { overridesApply, type ResolutionRecord, ReferenceResolver } from '../../access/reference-resolver.js'
import type { Principal } from '../../access/policy.js'
import type { AppContext } from '../../context.js'
import { CofferError, EnvironmentProtectedError, InternalError, NotFoundError, ValidationError } from '../../errors.js'
import type { Executor } from '../../storage/database.js'
import type { Environment } from '../../vault/project-service.js'
import type { SecretChange, SecretScope, SecretView } from '../../vault/secret-service.js'
import { defineRoute, type AnyRoute, type Target } from '../route.js'
import { proposeApply, proposeBulk, proposeDelete, proposeRollback, proposeSet } from './change-proposals.js'
import { environmentParams, flag, secretParams } from '../schemas.js'

const E = '/v1/workspaces/:workspace/projects/:project/environments/:environment'

function changeEvent(action: Extract<AuditAction, `secret.${string}`>, c: SecretChange): AuditEvent {
  return {
    action,
    target: { type: 'secret', id: c.secret.id },
    details: {
      key: c.secret.key,
      fromVersion: c.previousVersion,
      toVersion: c.secret.version,
      before: c.before === null ? null : new Sensitive(c.before),
      after: c.after === null ? null : new Sensitive(c.after),
    },
  }
}

/** The environment the pipeline resolved (and the policy allowed) from the URL. */
function scopeOf(workspaceId: string, target: Target): SecretScope {
  if (!target.project || !target.environment) throw new InternalError('a secret route without its environment')
  return { workspaceId, projectId: target.project.id, environmentId: target.environment.id }
}

const list = defineRoute({
  method: 'GET',
  url: `${E}/secrets`,
  tag: 'secrets',
  action: 'secret.read',
  elevate: { flag: 'reveal', action: 'secret.reveal' },
  mode: 'read',
  summary:
    'List the secrets of an environment; with reveal=true, decrypted (what `run` and `export` use; audited): imported keys added, your personal overrides applied, references resolved (raw=true: the stored values, references unresolved and no override)',
  params: environmentParams,
  query: z.strictObject({ reveal: flag.optional(), includeDeleted: flag.optional(), raw: flag.optional() }),
  response: secretListResponse,
  compiledResponse: true,
  async handler({ app, db, principal, workspace, target, query }) {
    const scope = scopeOf(workspace.id, target)
    const reveal = query.reveal ?? false
    const includeDeleted = query.includeDeleted ?? false
    const raw = query.raw ?? false
    const env = target.environment!
    const revealed = (count: number, keys: string[], resolved: ResolutionRecord | null): AuditEvent[] => [
      {
        action: 'secrets.reveal_all',
        target: { type: 'environment', id: scope.environmentId },
        details: { count, keys, ...resolutionDetails(resolved) },
      },
      ...grantEvents(resolved, 'GET', `${E}/secrets`),
    ]
    // @NOTE the hot path: the environment's snapshot, one ciphertext, and — when nothing is
    // imported, no override applies and no value holds `${` — its bytes are the answer as they
    // are, the values never parsed (vault/environment-snapshots.ts).
    const snapshot = reveal && !includeDeleted ? await app.snapshots.read(db, scope) : null
    if (snapshot && ReferenceResolver.untouchedBy(principal, env, raw, () => snapshot.references)) {
      return { json: snapshot.answer, audit: revealed(snapshot.keys.length, snapshot.keys, null) }
    }
    let secrets = snapshot ? snapshot.views() : await app.secrets.list(db, scope, { reveal, includeDeleted })
    let resolved: ResolutionRecord | null = null
    // No snapshot: nothing imported, no override, no `${` in any value — no query added.
    if (reveal && !ReferenceResolver.untouched(principal, env, secrets, raw)) {
      const r = resolverFor(app, db, principal, workspace.id, raw)
      secrets = await r.list(target.project!, env, secrets)
      resolved = r.record
    } else if (!reveal) await markOverridden(app, db, principal, env, scope, secrets)
    const audit = reveal
      ? revealed(
          secrets.length,
          secrets.map((s) => s.key),
          resolved,
        )
      : []
    return { body: { secrets }, audit }
  },
})

const events = defineRoute({
  method: 'GET',
  url: `${E}/events`,
  tag: 'secrets',
  action: 'secret.read',
  mode: 'read',
  events: { event: 'secrets', follows: (body) => body.dependencies?.map((d) => d.environment) ?? [] },
  summary:
    'Server-sent events (text/event-stream): the keys and versions of an environment (never values), sent on open and on every change; ends with an `end` event when the credential loses access (what `coffer run --watch` uses)',
  params: environmentParams,
  query: z.strictObject({}),
  response: environmentStateResponse,
  async handler({ app, db, principal, workspace, target, params }) {
    const scope = scopeOf(workspace.id, target)
    const env = target.environment!
    // Values are decrypted (never sent) only to find what they reference, for a reader who may reveal them.
    const reveal =
      !env.sealed && decide(principal, 'secret.reveal', (await resolveTarget(db, principal, workspace.id, params)).resource).allow
    const listed = reveal ? await app.snapshots.list(db, scope) : await app.secrets.list(db, scope, { reveal, includeDeleted: false })
    const secrets = listed.map((s) => ({ key: s.key, version: s.version })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    if (!reveal || ReferenceResolver.untouched(principal, env, listed, false)) return { body: { secrets } }
    const dependencies = await dependenciesOf(app, db, principal, workspace.id, target, listed)
    return { body: dependencies.length ? { secrets, dependencies } : { secrets } }
  },
})

/**
 * The other environments a reader's fetch of the target reads (imports, references, followed
 * through each other), each with its state digest: what a watch must follow besides the
 * environment itself. A resolution that fails (a reference to a missing key…) follows nothing:
 * the fetch fails too, and the next change of the environment is checked again. Any other failure
 * (the database) ends the stream, as a failed read would.
 */
async function dependenciesOf(
  app: AppContext,
  db: Executor,
  principal: Principal,
  workspaceId: string,
  target: Target,
  views: SecretView[],
): Promise<Array<{ environment: string; state: string }>> {
  const r = resolverFor(app, db, principal, workspaceId, false)
  try {
    await r.list(target.project!, target.environment!, views)
  } catch (err) {
    // A refused or broken reference: the fetch fails the same way. Anything else (the database) ends the stream.
    if (err instanceof CofferError) return []
    throw err
  }
  const ids = [...new Set([...r.record.references.map((x) => x.environment), ...r.record.imports])]
    .filter((id) => id !== target.environment!.id)
    .sort()
  const states = await app.secrets.statesOfEnvironments(db, workspaceId, ids)
  return ids.map((id) => ({ environment: id, state: states.get(id)! }))
}

const get = defineRoute({
  method: 'GET',
  url: `${E}/secrets/:key`,
  tag: 'secrets',
  action: 'secret.read',
  elevate: { flag: 'reveal', action: 'secret.reveal' },
  mode: 'read',
  summary:
    'Show one secret; with reveal=true, its value (audited): imported, your personal override applied, references resolved (raw=true: the stored value, references unresolved and no override)',
  params: secretParams,
  query: z.strictObject({ reveal: flag.optional(), raw: flag.optional() }),
  response: secretResponse,
  async handler({ app, db, principal, workspace, target, params, query }) {
    const scope = scopeOf(workspace.id, target)
    const reveal = query.reveal ?? false
    const env = target.environment!
    let resolved: ResolutionRecord | null = null
    let secret: SecretView
    if (!reveal) {
      secret = await app.secrets.get(db, scope, params.key, { reveal })
      await markOverridden(app, db, principal, env, scope, [secret])
    } else {
      let local: SecretView | null = null
      try {
        local = await app.secrets.get(db, scope, params.key, { reveal })
      } catch (err) {
        // A key this environment does not hold may come from one it imports.
        if (!(err instanceof NotFoundError) || env.imports.length === 0) throw err
      }
      if (local && ReferenceResolver.untouched(principal, env, [local], query.raw ?? false)) secret = local
      else {
        const r = resolverFor(app, db, principal, workspace.id, query.raw ?? false)
        secret = await r.one(target.project!, env, params.key)
        resolved = r.record
      }
    }
    const audit: AuditEvent[] = reveal
      ? [
          {
            action: 'secret.reveal',
            target: { type: 'secret', id: secret.id },
            details: { key: secret.key, version: secret.version, ...resolutionDetails(resolved) },
          },
          ...grantEvents(resolved, 'GET', `${E}/secrets/:key`),
        ]
      : []
    return { body: { secret }, audit }
  },
})

/** One fetch's resolver (references, imports, the reader's overrides). */
function resolverFor(app: AppContext, db: Executor, principal: Principal, workspaceId: string, raw: boolean): ReferenceResolver {
  return new ReferenceResolver({
    db,
    principal,
    workspaceId,
    now: app.clock(),
    secrets: app.secrets,
    overrides: app.overrides,
    snapshots: app.snapshots,
    raw,
  })
}

/** Marks the keys the reader overrides (listing without values); one query, only where overrides apply to them. */
async function markOverridden(
  app: AppContext,
  db: Executor,
  principal: Principal,
  env: Environment,
  scope: SecretScope,
  secrets: SecretView[],
): Promise<void> {
  if (principal.type !== 'user' || !overridesApply(principal, env)) return
  const keys = await app.overrides.keys(db, scope, principal.userId)
  for (const s of secrets) if (keys.has(s.key) && !s.deleted) s.overridden = true
}

/** What a fetch read beyond its environment, for its audit entry: names and ids, never values. */
function resolutionDetails(r: ResolutionRecord | null): Record<string, unknown> {
  if (!r) return {}
  return {
    ...(r.references.length ? { references: r.references } : {}),
    ...(r.imports.length ? { imports: r.imports } : {}),
    ...(r.overrides.length ? { overrides: r.overrides } : {}),
  }
}

/** A referenced or imported sealed environment read through a break-glass grant is a grant use, like a URL naming it. */
function grantEvents(r: ResolutionRecord | null, method: string, url: string): AuditEvent[] {
  return (r?.grants ?? []).map((g) => grantUseEvent(g, 'secret.reveal', method, url))
}

const set = defineRoute({
  method: 'PUT',
  url: `${E}/secrets/:key`,
  tag: 'secrets',
  action: 'secret.write',
  mode: 'write',
  locksOwnRows: 'key',
  summary: 'Create or update a secret (a new version); ifVersion makes it check-and-set',
  propose: proposeSet,
  params: secretParams,
  body: secretWriteBody,
  response: secretResponse,
  async handler({ app, db, principal, workspace, target, params, body }) {
    const scope = scopeOf(workspace.id, target)
    const c = await app.secrets.set(db, scope, actorId(principal), params.key, body)
    return { body: { secret: c.secret }, audit: changeEvent(c.previousVersion === 0 ? 'secret.create' : 'secret.update', c) }
  },
})

const bulk = defineRoute({
  method: 'POST',
  url: `${E}/secrets`,
  tag: 'secrets',
  action: 'secret.write',
  mode: 'write',
  locksOwnRows: 'keys',
  summary: 'Set many secrets atomically: all are written or none',
  propose: proposeBulk,
  params: environmentParams,
  body: secretBulkWriteBody,
  response: secretListResponse,
  async handler({ app, db, principal, workspace, target, body }) {
    const scope = scopeOf(workspace.id, target)
    const changes = await app.secrets.setMany(db, scope, actorId(principal), body.secrets)
    return {
      body: { secrets: changes.map((c) => c.secret) },
      audit: changes.map((c) => changeEvent(c.previousVersion === 0 ? 'secret.create' : 'secret.update', c)),
    }
  },
})

const del = defineRoute({
  method: 'DELETE',
  url: `${E}/secrets/:key`,
  tag: 'secrets',
  action: 'secret.write',
  mode: 'write',
  locksOwnRows: 'key',
  summary: 'Delete a secret (a tombstone version; restorable)',
  propose: proposeDelete,
  params: secretParams,
  query: z.strictObject({ ifVersion: z.coerce.number().int().min(0).optional() }),
  response: secretResponse,
  async handler({ app, db, principal, workspace, target, params, query }) {
    const scope = scopeOf(workspace.id, target)
    const c = await app.secrets.delete(db, scope, actorId(principal), params.key, query.ifVersion)
    return { body: { secret: c.secret }, audit: changeEvent('secret.delete', c) }
  },
})

const restore = defineRoute({
  method: 'POST',
  url: `${E}/secrets/:key/restore`,
  tag: 'secrets',
  action: 'secret.write',
  mode: 'write',
  summary: 'Restore a deleted secret to its last value (a new version)',
  params: secretParams,
  response: secretResponse,
  async handler({ app, db, principal, workspace, target, params }) {
    const scope = scopeOf(workspace.id, target)
    const c = await app.secrets.restore(db, scope, actorId(principal), params.key)
    return { body: { secret: c.secret }, audit: changeEvent('secret.restore', c) }
  },
})

const history = defineRoute({
  method: 'GET',
  url: `${E}/secrets/:key/versions`,
  tag: 'secrets',
  action: 'secret.read',
  elevate: { flag: 'reveal', action: 'secret.reveal' },
  mode: 'read',
  summary: 'Every version of a secret, newest first; with reveal=true, their values (audited)',
  params: secretParams,
  query: z.strictObject({ reveal: flag.optional() }),
  response: secretHistoryResponse,
  async handler({ app, db, workspace, target, params, query }) {
    const scope = scopeOf(workspace.id, target)
    const reveal = query.reveal ?? false
    const r = await app.secrets.history(db, scope, params.key, { reveal })
    const audit: AuditEvent | null = reveal
      ? {
          action: 'secret.reveal_history',
          target: { type: 'secret', id: r.secret.id },
          details: { key: r.secret.key, versions: r.versions.length },
        }
      : null
    return { body: r, audit }
  },
})

const rollback = defineRoute({
  method: 'POST',
  url: `${E}/secrets/:key/rollback`,
  tag: 'secrets',
  action: 'secret.write',
  mode: 'write',
  summary: 'Write a new version equal to an earlier one',
  propose: proposeRollback,
  params: secretParams,
  body: secretRollbackBody,
  response: secretResponse,
  async handler({ app, db, principal, workspace, target, params, body }) {
    const scope = scopeOf(workspace.id, target)
    const c = await app.secrets.rollback(db, scope, actorId(principal), params.key, body.version, body.ifVersion)
    const event = changeEvent('secret.rollback', c)
    return { body: { secret: c.secret }, audit: { ...event, details: { ...event.details, copiedVersion: body.version } } }
  },
})

const CHANGE_ACTION = { create: 'secret.create', update: 'secret.update', delete: 'secret.delete' } as const

const apply = defineRoute({
  method: 'POST',
  url: `${E}/secrets/apply`,
  tag: 'secrets',
  action: 'secret.write',
  mode: 'write',
  summary:
    'Apply a set of values (a pasted .env): dryRun answers the diff (adds, changes, deletes, unchanged; keys and versions only); otherwise one atomic write, check-and-set with ifState',
  params: environmentParams,
  body: secretApplyBody,
  response: secretApplyResponse,
  propose: proposeApply,
  async handler({ app, db, principal, workspace, target, body }) {
    const scope = scopeOf(workspace.id, target)
    const r = await app.secrets.apply(db, scope, actorId(principal), body)
    const dryRun = body.dryRun ?? false
    const keys = (entries: Array<{ key: string }>) => entries.map((e) => e.key)
    return {
      body: { dryRun, state: r.state, newState: r.newState, adds: r.adds, changes: r.changes, deletes: r.deletes, unchanged: r.unchanged },
      audit: [
        ...r.written.map((w) => changeEvent(CHANGE_ACTION[w.kind], w.change)),
        {
          action: 'secrets.apply',
          target: { type: 'environment', id: scope.environmentId },
          details: {
            dryRun,
            replace: body.replace ?? false,
            state: r.state,
            newState: r.newState,
            adds: keys(r.adds),
            changes: keys(r.changes),
            deletes: keys(r.deletes),
            unchanged: r.unchanged.length,
          },
        },
      ],
    }
  },
})

const copy = defineRoute({
  method: 'POST',
  url: `${E}/secrets/copy`,
  tag: 'secrets',
  // Reading the source's values; writing the target is decided below, by the same policy.
  action: 'secret.reveal',
  mode: 'write',
  summary: 'Copy keys (value, comment, tags) to another environment of the workspace, atomically; needs reveal here and write there',
  params: environmentParams,
  body: secretCopyBody,
  response: secretCopyResponse,
  async handler({ app, db, principal, workspace, target, body }) {
    const from = scopeOf(workspace.id, target)
    // The target, found and decided exactly as the pipeline does for a URL: another
    // workspace's or an invisible project or environment is 404, too weak a role 403, and a
    // sealed target needs a person's break-glass grant.
    const params = { project: body.to.project ?? from.projectId, environment: body.to.environment }
    const t = await resolveTarget(db, principal, workspace.id, params)
    authorize(principal, 'secret.write', t.resource)
    if (!t.project || !t.environment) throw new InternalError('an authorized copy target without its environment')
    const known = { id: t.environment.id, sealed: t.environment.sealed }
    const grant = await breakGlassDecision(db, principal, 'secret.write', workspace.id, params, {}, app.clock(), known)
    if (t.environment.changeApprovals > 0)
      throw new EnvironmentProtectedError(
        `${t.environment.slug} is protected: copy into it as a change request with coffer secrets promote (POST …/environments/${t.environment.slug}/promote).`,
      )
    if (t.environment.id === from.environmentId) {
      throw new ValidationError('The target is the source environment.', [{ path: 'body.to', message: 'same as the source' }])
    }
    const to = { workspaceId: workspace.id, projectId: t.project.id, environmentId: t.environment.id }
    const r = await app.secrets.copy(db, from, to, actorId(principal), body.keys, body.overwrite ?? false)
    const events: AuditEvent[] = r.written.map((w) => {
      const e = changeEvent(CHANGE_ACTION[w.kind], w.change)
      return {
        ...e,
        details: {
          ...e.details,
          copiedFrom: { project: from.projectId, environment: from.environmentId, secret: w.from.id, version: w.from.version },
        },
      }
    })
    events.push({
      action: 'secrets.copy',
      target: { type: 'environment', id: to.environmentId },
      details: {
        from: { project: from.projectId, environment: from.environmentId },
        to: { project: to.projectId, environment: to.environmentId },
        adds: r.adds.map((e) => e.key),
        changes: r.changes.map((e) => e.key),
        unchanged: r.unchanged.map((e) => e.key),
      },
    })
    if (grant) events.push(grantUseEvent(grant, 'secret.write', 'POST', `${E}/secrets/copy`))
    return {
      body: {
        target: { projectId: to.projectId, environmentId: to.environmentId },
        adds: r.adds,
        changes: r.changes,
        unchanged: r.unchanged,
      },
      audit: events,
    }
  },
})

export const secretRoutes: AnyRoute[] = [list, events, get, set, bulk, apply, copy, del, restore, history, rollback]
