import type { CofferClient, IntegrationScope } from '../client/client.js'

/**
 * Names for the ids the API answers with, so CLI tables show `ana@example.com` and
 * `web-shop/production` rather than UUIDs. Each kind is fetched once, when first needed; what
 * the caller may not list (a 403, say) stays an id — names never make a command fail.
 */
export class Names {
  readonly #client: CofferClient
  readonly #ws: string
  #people?: Promise<Map<string, string>>
  #integrations?: Promise<Map<string, string>>
  #places?: Promise<{ projects: Map<string, string>; envs: Map<string, { project: string; slug: string }> }>

  constructor(client: CofferClient, workspace: string) {
    this.#client = client
    this.#ws = workspace
  }

  /** user id → email, for everyone in the workspace. */
  people(): Promise<Map<string, string>> {
    this.#people ??= this.#client
      .listMembers(this.#ws)
      .then((ms) => new Map(ms.map((m) => [m.userId, m.email])))
      .catch(() => new Map())
    return this.#people
  }

  /** A user id as their email (else the id). */
  async person(id: string): Promise<string> {
    return (await this.people()).get(id) ?? id
  }

  /** Whoever `id` is — a member's email, `machine NAME` or `token NAME` — else the id. */
  async who(id: string): Promise<string> {
    const email = (await this.people()).get(id)
    return email ?? (await this.integrations()).get(id) ?? id
  }

  /** An audit actor (`user`, `machine`, `service_token`, …) by its name: an email or an integration's name. */
  async actor(type: string, id: string): Promise<string> {
    if (type === 'user') return this.person(id)
    const name = (await this.integrations()).get(id)
    // An unauthenticated caller (a refused exchange) only claimed to be that integration.
    if (type === 'anonymous') return name ? `anonymous (as ${name})` : id ? `anonymous ${id}` : 'anonymous'
    return name ?? `${type} ${id}`
  }

  /** machine or service-token id → `machine NAME` / `token NAME`. */
  integrations(): Promise<Map<string, string>> {
    this.#integrations ??= Promise.all([
      this.#client.listMachines(this.#ws).catch(() => []),
      this.#client.listServiceTokens(this.#ws).catch(() => []),
    ]).then(
      ([ms, ts]) => new Map([...ms.map((m) => [m.id, `machine ${m.name}`] as const), ...ts.map((t) => [t.id, `token ${t.name}`] as const)]),
    )
    return this.#integrations
  }

  #loadPlaces() {
    this.#places ??= (async () => {
      const projects = new Map<string, string>()
      const envs = new Map<string, { project: string; slug: string }>()
      const list = await this.#client.listProjects(this.#ws).catch(() => [])
      for (const p of list) projects.set(p.id, p.slug)
      await Promise.all(
        list.map(async (p) => {
          for (const e of await this.#client.listEnvironments(this.#ws, p.id).catch(() => []))
            envs.set(e.id, { project: p.slug, slug: e.slug })
        }),
      )
      return { projects, envs }
    })()
    return this.#places
  }

  /** A project id as its slug (else the id). */
  async project(id: string): Promise<string> {
    return (await this.#loadPlaces()).projects.get(id) ?? id
  }

  /** An environment id as `project/env` (else the id). */
  async environment(id: string): Promise<string> {
    const e = (await this.#loadPlaces()).envs.get(id)
    return e ? `${e.project}/${e.slug}` : id
  }

  /** An integration's scopes as `project/env:access` words (`project/*:read` for every environment). */
  async scopes(scopes: readonly IntegrationScope[]): Promise<string> {
    const words: string[] = []
    for (const s of scopes) {
      const project = await this.project(s.projectId)
      if (s.environments === '*') words.push(`${project}/*:${s.access}`)
      else
        for (const e of s.environments) {
          const named = await this.environment(e)
          words.push(`${named === e ? `${project}/${e}` : named}:${s.access}`)
        }
    }
    return words.join(' ')
  }
}
