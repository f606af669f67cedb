import { environmentImportsBody, environmentResponse, personalOverridesSettingBody } from '../../api/projects.js'
import { personalOverrideBody, personalOverrideResponse } from '../../api/secrets.js'
import { authorize, type Principal, type UserPrincipal } from '../../access/policy.js'
import { resolveTarget } from '../../access/target.js'
import { InternalError, NotFoundError, PersonalOverrideNotAllowedError, ValidationError } from '../../errors.js'
import {
  type Environment,
  environmentImportGraph,
  setEnvironmentImports,
  setPersonalOverridesAllowed,
} from '../../vault/project-service.js'
import type { SecretScope } from '../../vault/secret-service.js'
import { defineRoute, type AnyRoute, type Target } from '../route.js'
import { environmentParams, secretParams } from '../schemas.js'

// Issue 16 §1–2: an environment's imports and its personal-override setting (project admins),
// and a member's own overrides. Resolution itself happens where values are fetched
// (secret-routes.ts, through src/access/reference-resolver.ts).

const E = '/v1/workspaces/:workspace/projects/:project/environments/:environment'

function targetOf(workspaceId: string, target: Target): { env: Environment; scope: SecretScope } {
  if (!target.project || !target.environment) throw new InternalError('an environment route without its environment')
  return { env: target.environment, scope: { workspaceId, projectId: target.project.id, environmentId: target.environment.id } }
}

const setImports = defineRoute({
  method: 'PUT',
  url: `${E}/imports`,
  tag: 'projects',
  action: 'environment.manage',
  mode: 'write',
  summary:
    'Set the environments this one imports (all their keys; its own keys win, later imports over earlier); an empty list removes them. Each reader is checked against every imported environment when values are fetched',
  params: environmentParams,
  body: environmentImportsBody,
  response: environmentResponse,
  async handler({ db, principal, workspace, target, body }) {
    const { env } = targetOf(workspace.id, target)
    const ids: string[] = []
    for (const [i, imp] of body.imports.entries()) {
      const t = await resolveTarget(db, principal, workspace.id, { project: imp.project ?? env.projectId, environment: imp.environment })
      // The admin must see the imported environment (as listing its keys would need); readers are decided at fetch time.
      authorize(principal, 'secret.read', t.resource)
      if (!t.environment) throw new NotFoundError('environment')
      const path = `body.imports.${i}`
      if (t.environment.id === env.id)
        throw new ValidationError('An environment cannot import itself.', [{ path, message: 'is this environment' }])
      if (ids.includes(t.environment.id))
        throw new ValidationError('An environment is imported twice.', [{ path, message: 'imported twice' }])
      ids.push(t.environment.id)
    }
    // Refuse an import that leads back here (resolution would refuse it too, on every fetch).
    const graph = await environmentImportGraph(db, workspace.id)
    const seen = new Set<string>()
    const stack = [...ids]
    while (stack.length) {
      const id = stack.pop() as string
      if (id === env.id)
        throw new ValidationError('These imports would form a cycle back to this environment.', [
          { path: 'body.imports', message: 'cycle' },
        ])
      if (seen.has(id)) continue
      seen.add(id)
      stack.push(...(graph.get(id) ?? []))
    }
    await setEnvironmentImports(db, workspace.id, env.id, ids)
    return {
      body: { environment: { ...env, imports: ids } },
      audit: {
        action: 'environment.imports_set',
        target: { type: 'environment', id: env.id },
        details: { project: env.projectId, from: env.imports, to: ids },
      },
    }
  },
})

const setPersonalSetting = defineRoute({
  method: 'PUT',
  url: `${E}/personal-overrides`,
  tag: 'projects',
  action: 'environment.manage',
  mode: 'write',
  summary:
    'Allow (or stop allowing) members to keep personal overrides in this environment; never honoured while it is restricted or sealed',
  params: environmentParams,
  body: personalOverridesSettingBody,
  response: environmentResponse,
  async handler({ db, workspace, target, body }) {
    const { env } = targetOf(workspace.id, target)
    await setPersonalOverridesAllowed(db, workspace.id, env.id, body.allowed)
    return {
      body: { environment: { ...env, personalOverrides: body.allowed } },
      audit: {
        action: 'environment.personal_overrides_set',
        target: { type: 'environment', id: env.id },
        details: { project: env.projectId, from: env.personalOverrides, to: body.allowed },
      },
    }
  },
})

/** The person setting an override here, or why not (a 409 with its own code, after the policy allowed reading). */
function overrideOwner(principal: Principal, env: Environment, setting: boolean): UserPrincipal {
  if (principal.type !== 'user')
    throw new PersonalOverrideNotAllowedError('Personal overrides belong to members: a service token or machine identity has none.')
  if (!setting) return principal
  if (env.restricted || env.sealed)
    throw new PersonalOverrideNotAllowedError('Personal overrides are never allowed in a restricted or sealed environment.')
  if (!env.personalOverrides)
    throw new PersonalOverrideNotAllowedError(
      'This environment does not allow personal overrides (a project admin allows them: coffer envs personal-overrides on).',
    )
  return principal
}

const setPersonal = defineRoute({
  method: 'PUT',
  url: `${E}/secrets/:key/personal`,
  tag: 'secrets',
  // Your own value for a key you may reveal here; only your fetches see it.
  action: 'secret.reveal',
  mode: 'write',
  summary:
    'Set your personal override of a key: your fetches (reveal, run, export, references) see this value, nobody else does (audited: key and version only)',
  params: secretParams,
  body: personalOverrideBody,
  response: personalOverrideResponse,
  async handler({ app, db, principal, workspace, target, params, body }) {
    const { env, scope } = targetOf(workspace.id, target)
    const user = overrideOwner(principal, env, true)
    // The key must exist here: an override replaces a value, it adds no key.
    const secret = await app.secrets.get(db, scope, params.key, { reveal: false })
    const r = await app.overrides.set(db, scope, user.userId, params.key, body.value)
    return {
      body: { override: r.view },
      audit: {
        action: 'secret.personal_set',
        target: { type: 'secret', id: secret.id },
        details: { key: params.key, environment: env.id, overrideVersion: r.view.version },
      },
    }
  },
})

const removePersonal = defineRoute({
  method: 'DELETE',
  url: `${E}/secrets/:key/personal`,
  tag: 'secrets',
  action: 'secret.read',
  mode: 'write',
  summary: 'Remove your personal override of a key (allowed even after the environment stopped allowing them)',
  params: secretParams,
  response: personalOverrideResponse,
  async handler({ app, db, principal, workspace, target, params }) {
    const { env, scope } = targetOf(workspace.id, target)
    const user = overrideOwner(principal, env, false)
    const r = await app.overrides.remove(db, scope, user.userId, params.key)
    if (!r) throw new NotFoundError('personal override')
    return {
      body: { override: r.view },
      audit: {
        action: 'secret.personal_unset',
        target: { type: 'environment', id: env.id },
        details: { key: params.key, environment: env.id, overrideVersion: r.view.version },
      },
    }
  },
})

export const referenceRoutes: AnyRoute[] = [setImports, setPersonalSetting, setPersonal, removePersonal]
