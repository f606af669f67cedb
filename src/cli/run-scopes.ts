import type { CofferClient, Scope } from '../client/client.js'
import { ExitError } from './exit-error.js'
import { findProjectConfig } from './project-config.js'

// Which environments `coffer run` reads, in order (later wins): every --env, each `ENV` (of
// --project, else .coffer.json's project) or `PROJECT/ENV`; else .coffer.json's environment;
// else — for a service token or machine identity limited to exactly one environment — the
// token's own (the server says which in GET /v1/me).

/** The environments asked for, before the server is asked anything. `layers` null: the token's own environment. */
export interface ScopePlan {
  readonly workspace: string | undefined
  readonly layers: ReadonlyArray<{ readonly project: string; readonly environment: string }> | null
}

/** Reads --workspace, --project and every --env (with .coffer.json as the default); throws ERR_NO_PROJECT for an ENV without a project. */
export function planScopes(opts: { workspace?: string; project?: string; env?: readonly string[] }): ScopePlan {
  const linked = findProjectConfig()?.config ?? {}
  const envs = opts.env?.length ? opts.env : linked.environment ? [linked.environment] : []
  const workspace = opts.workspace ?? linked.workspace
  if (!envs.length) return { workspace, layers: null }
  const layers = envs.map((e) => {
    const slash = e.indexOf('/')
    const project = slash === -1 ? (opts.project ?? linked.project) : e.slice(0, slash)
    const environment = slash === -1 ? e : e.slice(slash + 1)
    if (!project || !environment) {
      throw new ExitError(
        `No project for environment "${e}": pass --project, write it as PROJECT/ENV, or run \`coffer setup --project P --env E\` in this directory.`,
        { code: 'ERR_NO_PROJECT' },
      )
    }
    return { project, environment }
  })
  return { workspace, layers }
}

/**
 * The URL's `:workspace` for "the token's own workspace" (the server's OWN_WORKSPACE): `coffer
 * run` without --workspace needs no GET /v1/me before its fetch, one round trip less.
 */
const OWN_WORKSPACE = '-'

/** The plan's environments as scopes; asks the server (GET /v1/me) only for the token's own environment. */
export async function resolveScopes(client: CofferClient, plan: ScopePlan): Promise<Scope[]> {
  if (plan.layers) return plan.layers.map((l) => ({ workspace: plan.workspace ?? OWN_WORKSPACE, ...l }))
  const me = await client.me()
  const workspace = plan.workspace ?? me.workspace.slug
  if (me.scope) return [{ workspace, project: me.scope.project, environment: me.scope.environment }]
  throw new ExitError('No project/environment: pass --project and --env, or run `coffer setup --project P --env E` in this directory.', {
    code: 'ERR_NO_PROJECT',
  })
}
