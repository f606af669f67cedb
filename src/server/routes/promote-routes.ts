import { breakGlassDecision, grantUseEvent, type ActiveGrant } from '../../access/break-glass.js'
import type { ChangeOp } from '../../access/change-requests.js'
import { environmentViews } from '../../access/environment-access.js'
import { actorId, authorize, type Action, type Principal } from '../../access/policy.js'
import { resolveTarget } from '../../access/target.js'
import {
  environmentDiffQuery,
  environmentDiffResponse,
  type EnvironmentDiffEntry,
  promoteBody,
  promoteResponse,
} from '../../api/promote.js'
import { Sensitive, type AuditEvent } from '../../audit/audit-log.js'
import { EnvironmentChangedError, InternalError, ValidationError } from '../../errors.js'
import type { Executor } from '../../storage/database.js'
import type { Environment, Project } from '../../vault/project-service.js'
import type { SecretScope } from '../../vault/secret-service.js'
import type { AppContext } from '../../context.js'
import { defineRoute, type AnyRoute, type Target } from '../route.js'
import { environmentParams } from '../schemas.js'

// Comparing two environments (diff) and promoting keys from one into another (promote).

const E = '/v1/workspaces/:workspace/projects/:project/environments/:environment'

interface Place {
  scope: SecretScope
  project: Project
  environment: Environment
}

function placeOf(workspaceId: string, target: Target): Place {
  if (!target.project || !target.environment) throw new InternalError('an environment route without its environment')
  return {
    scope: { workspaceId, projectId: target.project.id, environmentId: target.environment.id },
    project: target.project,
    environment: target.environment,
  }
}

/**
 * The other environment a request names in its query or body, found and decided exactly as
 * the pipeline does for a URL: another workspace's or an invisible project or environment is
 * 404, too weak a role 403, and a person in a sealed one needs a break-glass grant.
 */
async function otherPlace(
  app: AppContext,
  db: Executor,
  principal: Principal,
  workspaceId: string,
  ref: { project: string; environment: string },
  action: Action,
): Promise<Place & { grant: ActiveGrant | null }> {
  const t = await resolveTarget(db, principal, workspaceId, ref)
  authorize(principal, action, t.resource)
  if (!t.project || !t.environment) throw new InternalError('an authorized environment without its rows')
  const grant = await breakGlassDecision(db, principal, action, workspaceId, ref, {}, app.clock(), {
    id: t.environment.id,
    sealed: t.environment.sealed,
  })
  return { ...placeOf(workspaceId, t), grant }
}

const diff = defineRoute({
  method: 'GET',
  url: `${E}/diff`,
  tag: 'secrets',
  action: 'secret.read',
  elevate: { flag: 'reveal', action: 'secret.reveal' },
  mode: 'read',
  summary:
    'Compare this environment with another (to, toProject): keys missing there, extra there, and different or equal by keyed value fingerprints; values only with reveal=true (needs reveal on both; audited)',
  params: environmentParams,
  query: environmentDiffQuery,
  response: environmentDiffResponse,
  async handler({ app, db, principal, workspace, target, query }) {
    const from = placeOf(workspace.id, target)
    const reveal = query.reveal ?? false
    const ref = { project: query.toProject ?? from.project.id, environment: query.to }
    const to = await otherPlace(app, db, principal, workspace.id, ref, reveal ? 'secret.reveal' : 'secret.read')
    const d = await app.secrets.diff(db, from.scope, to.scope)
    // A fingerprint equal to a readable environment's gives a value away: values are compared
    // only where the caller may reveal both sides (environment-access.ts).
    const fv = (await environmentViews(db, principal, from.project, [from.environment])).get(from.environment.id)
    const tv = (await environmentViews(db, principal, to.project, [to.environment])).get(to.environment.id)
    const valuesCompared = reveal || (fv?.fingerprints === true && tv?.fingerprints === true)
    let fromValues = new Map<string, string>()
    let toValues = new Map<string, string>()
    if (reveal) {
      const values = async (s: SecretScope) => new Map((await app.secrets.list(db, s, { reveal: true })).map((x) => [x.key, x.value ?? '']))
      fromValues = await values(from.scope)
      toValues = await values(to.scope)
    }
    const show = (e: { key: string; fromVersion: number; toVersion: number }): EnvironmentDiffEntry => {
      const out: EnvironmentDiffEntry = { ...e }
      if (reveal && fromValues.has(e.key)) out.fromValue = fromValues.get(e.key) ?? ''
      if (reveal && toValues.has(e.key)) out.toValue = toValues.get(e.key) ?? ''
      return out
    }
    const audit: AuditEvent[] = []
    if (reveal) {
      audit.push({
        action: 'secrets.diff_reveal',
        target: { type: 'environment', id: from.scope.environmentId },
        details: {
          from: { project: from.scope.projectId, environment: from.scope.environmentId, keys: [...fromValues.keys()] },
          to: { project: to.scope.projectId, environment: to.scope.environmentId, keys: [...toValues.keys()] },
        },
      })
      if (to.grant) audit.push(grantUseEvent(to.grant, 'secret.reveal', 'GET', `${E}/diff`))
    }
    return {
      body: {
        from: { projectId: from.project.id, environmentId: from.environment.id, slug: from.environment.slug, state: d.fromState },
        to: { projectId: to.project.id, environmentId: to.environment.id, slug: to.environment.slug, state: d.toState },
        valuesCompared,
        revealed: reveal,
        missing: d.missing.map(show),
        extra: d.extra.map(show),
        different: valuesCompared ? d.different.map(show) : [],
        same: valuesCompared ? d.same.map(show) : [],
        uncompared: valuesCompared ? [] : [...d.different, ...d.same].sort((a, b) => (a.key < b.key ? -1 : 1)).map(show),
      },
      audit,
    }
  },
})

type PromoteBody = {
  from: { project?: string | undefined; environment: string }
  keys?: string[] | undefined
  all?: boolean | undefined
  ifState?: string | undefined
}

/** The source of a promotion (reveal there is needed) and the keys to promote. */
async function sourceOf(app: AppContext, db: Executor, principal: Principal, workspaceId: string, to: Place, body: PromoteBody) {
  const ref = { project: body.from.project ?? to.project.id, environment: body.from.environment }
  const src = await otherPlace(app, db, principal, workspaceId, ref, 'secret.reveal')
  if (src.environment.id === to.environment.id) {
    throw new ValidationError('The source is this environment.', [{ path: 'body.from', message: 'same as the target' }])
  }
  const keys = body.all ? await app.secrets.liveKeys(db, src.scope) : [...new Set(body.keys ?? [])]
  if (keys.length === 0)
    throw new ValidationError('The source environment has no secrets to promote.', [{ path: 'body.all', message: 'nothing to promote' }])
  return { src, keys }
}

const promote = defineRoute({
  method: 'POST',
  url: `${E}/promote`,
  tag: 'secrets',
  action: 'secret.write',
  mode: 'write',
  locksOwnRows: 'keys',
  summary:
    'Promote keys (or all) from another environment into this one: their current value, comment and tags, in one atomic write (a key missing in the source writes nothing); ifState makes it check-and-set; needs reveal there and write here',
  params: environmentParams,
  body: promoteBody,
  response: promoteResponse,
  async propose({ app, db, principal, workspace, target, body }) {
    const to = placeOf(workspace.id, target)
    const { src, keys } = await sourceOf(app, db, principal, workspace.id, to, body)
    if (body.ifState !== undefined) {
      const state = await app.secrets.stateOfScope(db, to.scope)
      if (state !== body.ifState) throw new EnvironmentChangedError(state)
    }
    const contents = await app.secrets.contentsOf(db, src.scope, keys)
    const d = await app.secrets.diff(db, src.scope, to.scope)
    const same = new Set(d.same.map((e) => e.key))
    const versions = await app.secrets.versionsOf(db, to.scope, keys)
    const ops: ChangeOp[] = contents
      .filter((c) => !same.has(c.key))
      .map((c) => ({ op: 'set', key: c.key, baseVersion: versions.get(c.key) ?? 0, value: c.value, comment: c.comment, tags: c.tags }))
    if (ops.length === 0) return null
    return { kind: 'promote', ops, source: { projectId: src.scope.projectId, environmentId: src.scope.environmentId } }
  },
  async handler({ app, db, principal, workspace, target, body }) {
    const to = placeOf(workspace.id, target)
    const { src, keys } = await sourceOf(app, db, principal, workspace.id, to, body)
    const r = await app.secrets.promote(db, src.scope, to.scope, actorId(principal), keys, body.ifState)
    const source = { project: src.scope.projectId, environment: src.scope.environmentId }
    const events: AuditEvent[] = r.written.map((w) => ({
      action: w.kind === 'create' ? 'secret.create' : 'secret.update',
      target: { type: 'secret', id: w.change.secret.id },
      details: {
        key: w.change.secret.key,
        fromVersion: w.change.previousVersion,
        toVersion: w.change.secret.version,
        before: w.change.before === null ? null : new Sensitive(w.change.before),
        after: w.change.after === null ? null : new Sensitive(w.change.after),
        promotedFrom: { ...source, secret: w.from.id, version: w.from.version },
      },
    }))
    events.push({
      action: 'secrets.promote',
      target: { type: 'environment', id: to.scope.environmentId },
      details: {
        from: source,
        to: { project: to.scope.projectId, environment: to.scope.environmentId },
        all: body.all ?? false,
        adds: r.adds.map((e) => e.key),
        changes: r.changes.map((e) => e.key),
        unchanged: r.unchanged.map((e) => e.key),
      },
    })
    if (src.grant) events.push(grantUseEvent(src.grant, 'secret.reveal', 'POST', `${E}/promote`))
    return {
      body: {
        source: { projectId: src.scope.projectId, environmentId: src.scope.environmentId },
        state: r.state,
        adds: r.adds,
        changes: r.changes,
        unchanged: r.unchanged,
      },
      audit: events,
    }
  },
})

/** Environment diff and promotion. */
export const promoteRoutes: AnyRoute[] = [diff, promote]
