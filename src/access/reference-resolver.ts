import {
  BreakGlassRequiredError,
  NotFoundError,
  ReferenceCycleError,
  ReferenceDepthError,
  ReferenceForbiddenError,
  ReferenceNotFoundError,
} from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { EnvironmentSnapshots } from '../vault/environment-snapshots.js'
import type { PersonalOverrides } from '../vault/personal-overrides.js'
import type { Environment, Project } from '../vault/project-service.js'
import { MAX_REFERENCE_DEPTH, mayHoldReferences, parseValue } from '../vault/references.js'
import type { SecretScope, SecretService, SecretView } from '../vault/secret-service.js'
import { type ActiveGrant, breakGlassDecision } from './break-glass.js'
import { decide, type Principal } from './policy.js'
import { resolveTarget } from './target.js'

// Resolving references, imports and personal overrides when values are fetched (issue 16
// §1–2). The route has already decided that the reader may reveal the environment it names;
// every *other* environment a value leads to — through `${env.KEY}`, `${project.env.KEY}` or
// an import — is found and decided here exactly as the pipeline would for a URL naming it
// (`resolveTarget`, `decide(…, 'secret.reveal', …)`, then break-glass for a sealed one). A
// refusal is an error naming the reference, never a value: an invisible environment (another
// workspace's, a project the reader holds no role in, outside a token's scopes) is "not found",
// a visible one the reader may not reveal is "forbidden".
//
// Personal overrides apply to the reader's own fetches only, for people (never integrations),
// in environments whose setting allows them and that are neither restricted nor sealed; a
// reference to a key the reader overrides resolves to the override.
//
// Cost: when the environment imports nothing, the reader has no overrides to apply, and no
// value contains `${`, `resolveList` returns after one indexOf per value — no query.

/** What one fetch read beyond the environment it named, for its audit entry (names and ids only). */
export interface ResolutionRecord {
  /** References followed: as written, the key holding each, and the environment id read. */
  references: Array<{ reference: string; key: string; environment: string }>
  /** Environments imported (ids), directly or through another import. */
  imports: string[]
  /** Keys whose value came from the reader's personal override. */
  overrides: string[]
  /** Break-glass grants through which a referenced sealed environment was read. */
  grants: ActiveGrant[]
}

/** Whether `env` honours personal overrides for `principal`. */
export function overridesApply(principal: Principal, env: Pick<Environment, 'personalOverrides' | 'restricted' | 'sealed'>): boolean {
  return principal.type === 'user' && env.personalOverrides && !env.restricted && !env.sealed
}

interface EnvState {
  readonly id: string
  readonly label: string
  readonly projectId: string
  readonly scope: SecretScope
  /** Effective values: imports (later win), then local keys, then the reader's overrides. */
  readonly entries: Map<string, Entry>
}

interface Entry {
  readonly key: string
  readonly raw: string
  /** The environment the raw value lives in: its `${KEY}` references resolve there. */
  readonly home: EnvState
  readonly view: SecretView
  readonly overridden: boolean
  readonly importedFrom?: string
}

/** The services and request facts resolution needs. */
export interface ResolverDeps {
  readonly db: Executor
  readonly principal: Principal
  readonly workspaceId: string
  readonly now: Date
  readonly secrets: SecretService
  readonly overrides: PersonalOverrides
  /** Reads another environment's revealed list from its snapshot when current (vault/environment-snapshots.ts); else from the rows. */
  readonly snapshots?: Pick<EnvironmentSnapshots, 'list'>
  /**
   * The values as stored (`raw=true`): references left as written and no personal override
   * applied — the shared value, which is what an editor must start from. Imports still apply.
   */
  readonly raw: boolean
}

/** One fetch's resolution: environments are loaded (and decided) at most once each. */
export class ReferenceResolver {
  readonly #d: ResolverDeps
  readonly #states = new Map<string, Promise<EnvState>>()
  readonly #resolved = new Map<Entry, string>()
  readonly record: ResolutionRecord = { references: [], imports: [], overrides: [], grants: [] }

  constructor(deps: ResolverDeps) {
    this.#d = deps
  }

  /**
   * Whether a fetch of `views` in `env` needs no resolution at all: nothing imported and —
   * unless `raw` — no override to apply and no value holding `${`.
   */
  static untouched(principal: Principal, env: Environment, views: readonly SecretView[], raw: boolean): boolean {
    return ReferenceResolver.untouchedBy(principal, env, raw, () => views.some((v) => v.value !== undefined && mayHoldReferences(v.value)))
  }

  /**
   * `untouched`, for a list whose values are not at hand: `holdsReferences` says whether one may
   * hold a reference (an environment snapshot records it), asked only when it matters.
   */
  static untouchedBy(principal: Principal, env: Environment, raw: boolean, holdsReferences: () => boolean): boolean {
    if (env.imports.length > 0) return false
    if (raw) return true
    if (overridesApply(principal, env)) return false
    return !holdsReferences()
  }

  /**
   * The environment's values as the reader sees them: imported keys added (marked
   * `importedFrom`) and — unless `raw` — the reader's overrides applied (marked `overridden`)
   * and every reference resolved. `views` is the environment's own revealed list.
   */
  async list(project: Project, env: Environment, views: SecretView[]): Promise<SecretView[]> {
    const state = await this.#state(project.id, env, `${project.slug}/${env.slug}`, views, [])
    const out: SecretView[] = []
    const seen = new Set<string>()
    for (const v of views) {
      const e = state.entries.get(v.key)
      if (v.deleted && e === undefined) out.push(v)
      if (!e || seen.has(e.key)) continue
      seen.add(e.key)
      out.push(await this.#view(e))
    }
    for (const e of state.entries.values()) if (!seen.has(e.key)) out.push(await this.#view(e))
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  /** One key as the reader sees it (imported, overridden, resolved unless `raw`); NotFound when it is nowhere. */
  async one(project: Project, env: Environment, key: string): Promise<SecretView> {
    const state = await this.#state(project.id, env, `${project.slug}/${env.slug}`, null, [])
    const e = state.entries.get(key)
    if (!e) throw new NotFoundError('secret')
    return this.#view(e)
  }

  async #view(e: Entry): Promise<SecretView> {
    const v: SecretView = { ...e.view, value: this.#d.raw ? e.raw : await this.#resolve(e, []) }
    if (e.overridden) v.overridden = true
    if (e.importedFrom !== undefined) v.importedFrom = e.importedFrom
    return v
  }

  /** The resolved value of `e`; `stack` is the chain of keys being resolved (for cycles and depth). */
  async #resolve(e: Entry, stack: string[]): Promise<string> {
    const done = this.#resolved.get(e)
    if (done !== undefined) return done
    if (!mayHoldReferences(e.raw)) return e.raw
    const here = `${e.home.label}.${e.key}`
    if (stack.includes(here)) throw new ReferenceCycleError([...stack.slice(stack.indexOf(here)), here].join(' → '))
    // Following this value's references would make the chain longer than the limit.
    if (stack.length >= MAX_REFERENCE_DEPTH) throw new ReferenceDepthError(MAX_REFERENCE_DEPTH, [...stack, here].join(' → '))
    let out = ''
    for (const part of parseValue(e.raw, e.key)) {
      if (typeof part === 'string') {
        out += part
        continue
      }
      const target =
        part.environment === undefined
          ? e.home
          : await this.#byReference(part.project ?? e.home.projectId, part.environment, part.text, e.key)
      const next = target.entries.get(part.key)
      if (!next) throw new ReferenceNotFoundError(part.text, e.key)
      if (target !== e.home) this.#note(part.text, e.key, target.id)
      out += await this.#resolve(next, [...stack, here])
    }
    this.#resolved.set(e, out)
    return out
  }

  #note(reference: string, key: string, environment: string): void {
    if (!this.record.references.some((r) => r.reference === reference && r.key === key))
      this.record.references.push({ reference, key, environment })
  }

  /** The environment a reference names, decided for the reader as a URL naming it would be. */
  async #byReference(projectRef: string, environmentRef: string, reference: string, key: string): Promise<EnvState> {
    const t = await this.#decided(
      projectRef,
      environmentRef,
      () => new ReferenceNotFoundError(reference, key),
      () => new ReferenceForbiddenError(reference, key),
    )
    return this.#state(t.project.id, t.environment, `${t.project.slug}/${t.environment.slug}`, null, [])
  }

  async #decided(
    projectRef: string,
    environmentRef: string,
    notFound: () => Error,
    forbidden: () => Error,
  ): Promise<{ project: Project; environment: Environment }> {
    const { db, principal, workspaceId, now } = this.#d
    const params = { project: projectRef, environment: environmentRef }
    const t = await resolveTarget(db, principal, workspaceId, params)
    const d = decide(principal, 'secret.reveal', t.resource)
    if (!d.allow) throw d.status === 404 ? notFound() : forbidden()
    if (!t.project || !t.environment) throw notFound()
    try {
      const grant = await breakGlassDecision(db, principal, 'secret.reveal', workspaceId, params, {}, now, t.environment)
      if (grant && !this.record.grants.some((g) => g.id === grant.id)) this.record.grants.push(grant)
    } catch (err) {
      if (err instanceof BreakGlassRequiredError) throw forbidden()
      throw err
    }
    return { project: t.project, environment: t.environment }
  }

  /**
   * The effective values of `env` (loaded once per fetch): its imports in order (each decided
   * for the reader), its own live keys over them, the reader's overrides over those.
   * `chain` is the import chain leading here (cycles and depth).
   */
  #state(projectId: string, env: Environment, label: string, views: SecretView[] | null, chain: string[]): Promise<EnvState> {
    if (chain.includes(label)) throw new ReferenceCycleError([...chain.slice(chain.indexOf(label)), label].join(' → '))
    if (chain.length > MAX_REFERENCE_DEPTH) throw new ReferenceDepthError(MAX_REFERENCE_DEPTH, [...chain, label].join(' → '))
    let s = this.#states.get(env.id)
    if (!s) {
      s = this.#load(projectId, env, label, views, chain)
      this.#states.set(env.id, s)
    }
    return s
  }

  async #load(projectId: string, env: Environment, label: string, views: SecretView[] | null, chain: string[]): Promise<EnvState> {
    const { db, principal, workspaceId, secrets, overrides } = this.#d
    const scope: SecretScope = { workspaceId, projectId, environmentId: env.id }
    const state: EnvState = { id: env.id, label, projectId, scope, entries: new Map() }
    for (const importedId of env.imports) {
      const what = `the import of ${label}`
      const row = await db
        .selectFrom('environments')
        .select('project_id')
        .where('workspace_id', '=', workspaceId)
        .where('id', '=', importedId)
        .executeTakeFirst()
      if (!row) throw new ReferenceNotFoundError(`an imported environment (${importedId})`, what)
      const t = await this.#decided(
        row.project_id,
        importedId,
        () => new ReferenceNotFoundError(`an imported environment (${importedId})`, what),
        () => new ReferenceForbiddenError(`an imported environment (${importedId})`, what),
      )
      const source = await this.#state(t.project.id, t.environment, `${t.project.slug}/${t.environment.slug}`, null, [...chain, label])
      if (!this.record.imports.includes(source.id)) this.record.imports.push(source.id)
      for (const [k, e] of source.entries) state.entries.set(k, e.importedFrom === undefined ? { ...e, importedFrom: source.label } : e)
    }
    const own = views ?? (await (this.#d.snapshots ? this.#d.snapshots.list(db, scope) : secrets.list(db, scope, { reveal: true })))
    for (const v of own) {
      if (v.deleted || v.value === undefined) continue
      state.entries.set(v.key, { key: v.key, raw: v.value, home: state, view: v, overridden: false })
    }
    if (!this.#d.raw && principal.type === 'user' && overridesApply(principal, env)) {
      for (const [k, value] of await overrides.values(db, scope, principal.userId)) {
        const base = state.entries.get(k)
        // @NOTE an override of a key that no longer exists here is ignored, not shown.
        if (!base || base.home !== state) continue
        state.entries.set(k, { ...base, raw: value, overridden: true })
        if (!this.record.overrides.includes(k)) this.record.overrides.push(k)
      }
    }
    return state
  }
}
