// The deployment files (deploy/) checked as far as this machine can: no image can be pulled
// or built here, and no chart rendered. What is checked: every variable they set is a real,
// documented setting whose value the server accepts; ports, paths and probes agree and exist;
// the container runs as a user, read-only, with a health check on /readyz; the systemd unit
// passes `systemd-analyze verify` without a warning; the alert rules name only exported
// metrics and pass promtool's check and their unit tests. deploy/README.md lists what is not run.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { parse } from 'yaml'
import { type AppContext, createContext } from '../../src/context.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv, SERVER_SETTINGS } from '../../src/ops/env.js'
import { Metrics } from '../../src/ops/metrics.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'

const ROOT = new URL('../../', import.meta.url).pathname
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8')
const SETTINGS = new Set<string>(SERVER_SETTINGS)
const CONFIG_DOC = read('docs/configuration.md')

// ---- what each file sets ------------------------------------------------------------------

/** The Dockerfile's stages: base image and instructions (continuation lines joined). */
function dockerfile(): Array<{ from: string; lines: string[] }> {
  const text = read('deploy/Dockerfile').replace(/\\\n/g, ' ')
  const stages: Array<{ from: string; lines: string[] }> = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    if (/^FROM\s/i.test(line)) stages.push({ from: line, lines: [] })
    else stages.at(-1)?.lines.push(line)
  }
  return stages
}

function dockerEnv(lines: string[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const l of lines.filter((x) => /^ENV\s/i.test(x))) {
    for (const m of l.slice(4).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '')
  }
  return env
}

type ComposeService = {
  image?: string
  user?: string
  read_only?: boolean
  environment?: Record<string, string>
  healthcheck?: unknown
}
const compose = () => parse(read('deploy/compose/compose.yaml'), { merge: true }) as { services: Record<string, ComposeService> }
const cofferServices = () => Object.entries(compose().services).filter(([name]) => name.startsWith('coffer-'))

/** Fills `${NAME:?…}` / `${NAME:-default}` the way compose would, from `vars`. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{([A-Z_]+)(?::[?-]([^}]*))?\}/g, (_m, name: string, fallback?: string) => vars[name] ?? fallback ?? '')
}

interface HelmValues {
  replicaCount: number
  port: number
  publicUrl: string
  logLevel: string
  secret: { name: string; rootKeyKey: string }
  extraEnv?: Record<string, string>
  podDisruptionBudget: { minAvailable: number }
  probes: Record<'liveness' | 'readiness' | 'startup', { path: string }>
  securityContext: { runAsUser: number }
}
const helmValues = () => parse(read('deploy/helm/coffer/values.yaml')) as HelmValues
const helmTemplates = () =>
  readdirSync(join(ROOT, 'deploy/helm/coffer/templates'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => read(`deploy/helm/coffer/templates/${f}`))
    .join('\n---\n')

/** Names the Helm templates set with `- name: X` under `env:`, plus the keys of `extraEnv`. */
function helmEnvNames(): string[] {
  const deployment = read('deploy/helm/coffer/templates/deployment.yaml')
  const envBlock = deployment.slice(deployment.indexOf('env:'), deployment.indexOf('startupProbe:'))
  return [...envBlock.matchAll(/- name: ([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!).concat(Object.keys(helmValues().extraEnv ?? {}))
}

const unit = () => read('deploy/systemd/coffer.service')
function unitEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const m of unit().matchAll(/^Environment=(\S+?)=(.*)$/gm)) env[m[1]!] = m[2]!
  return env
}

function assertRealSettings(names: string[], where: string): void {
  assert.ok(names.length > 0, `${where} sets no variable at all`)
  for (const n of names) {
    assert.ok(SETTINGS.has(n), `${where} sets ${n}, which is not a server setting (src/ops/env.ts)`)
    assert.ok(CONFIG_DOC.includes(`\`${n}\``), `${where} sets ${n}, which docs/configuration.md does not list`)
  }
}

// ---- the checks ---------------------------------------------------------------------------

describe('every variable the deployment files set is a real, documented setting the server accepts', () => {
  const rootKey = Buffer.alloc(32, 7).toString('base64')

  test('Dockerfile', () => {
    const env = dockerEnv(dockerfile().at(-1)!.lines)
    assertRealSettings(Object.keys(env), 'deploy/Dockerfile')
    buildConfig(readEnv(env))
  })

  test('compose file: three nodes on PostgreSQL and Redis with one root key', () => {
    const nodes = cofferServices()
    assert.equal(nodes.length, 3, 'three Coffer nodes')
    const vars = { APP_DB_PASSWORD: 'a1', OWNER_DB_PASSWORD: 'o1', COFFER_ROOT_KEY: rootKey, PUBLIC_URL: 'http://localhost:8080' }
    for (const [name, svc] of nodes) {
      assertRealSettings(Object.keys(svc.environment ?? {}), `compose ${name}`)
      const env = Object.fromEntries(Object.entries(svc.environment!).map(([k, v]) => [k, interpolate(String(v), vars)]))
      const config = buildConfig(readEnv(env))
      buildSecrets(readEnv(env))
      assert.equal(config.database.engine, 'postgres')
      assert.ok(config.database.engine === 'postgres' && config.database.migrationUrl, 'the schema owner migrates')
      assert.match(config.rateLimit.redisUrl ?? '', /^redis:\/\/redis:/, 'rate limits shared through Redis')
      assert.match(svc.environment!.COFFER_ROOT_KEY ?? '', /^\$\{COFFER_ROOT_KEY:\?[^}]*\}$/, 'every node gets the same root key, required')
    }
    const services = compose().services
    for (const s of ['postgres', 'redis', 'lb']) assert.ok(services[s], `a ${s} service`)
  })

  test('Helm chart', () => {
    assertRealSettings(helmEnvNames(), 'the Helm chart')
    const env: Record<string, string> = {
      COFFER_HOST: '0.0.0.0',
      COFFER_PORT: String(helmValues().port),
      COFFER_DATA_DIR: '/var/lib/coffer',
      COFFER_PUBLIC_URL: helmValues().publicUrl,
      COFFER_LOG_LEVEL: helmValues().logLevel,
      COFFER_ROOT_KEY: rootKey,
      DATABASE_URL: 'postgres://app@db/coffer',
    }
    for (const n of helmEnvNames()) if (!(n in env)) env[n] = n === 'REDIS_URL' ? 'redis://r:6379' : 'postgres://owner@db/coffer'
    buildConfig(readEnv(env))
    buildSecrets(readEnv(env))
  })

  test('systemd unit', () => {
    assertRealSettings(Object.keys(unitEnv()), 'deploy/systemd/coffer.service')
    buildConfig(readEnv(unitEnv()))
  })
})

describe('container image', () => {
  test('multi-stage, runs as a user, health check on /readyz at the port it listens on', () => {
    const stages = dockerfile()
    assert.ok(stages.length >= 2, 'a build stage and a runtime stage')
    const runtime = stages.at(-1)!
    const env = dockerEnv(runtime.lines)
    const user = runtime.lines.find((l) => /^USER\s/i.test(l))
    assert.ok(user, 'the runtime stage sets USER')
    assert.ok(!/^USER\s+(root|0)(:|$)/i.test(user), 'not root')
    assert.match(user, /^USER\s+\d+:\d+$/, 'a numeric user, so runAsNonRoot can check it')
    const expose = runtime.lines.find((l) => /^EXPOSE\s/i.test(l))
    assert.equal(expose, `EXPOSE ${env.COFFER_PORT}`)
    const health = runtime.lines.find((l) => /^HEALTHCHECK\s/i.test(l))
    assert.ok(health?.includes("'/readyz'") && health.includes('process.env.COFFER_PORT'), 'HEALTHCHECK asks /readyz on COFFER_PORT')
    const volume = runtime.lines.find((l) => /^VOLUME\s/i.test(l))
    assert.ok(volume?.includes(`"${env.COFFER_DATA_DIR}"`), 'the data directory is a volume')
    assert.equal(env.COFFER_HOST, '0.0.0.0')
  })

  test('every path it copies from the repository exists, and the entry point is the package’s', () => {
    const build = dockerfile()[0]!
    for (const l of build.lines.filter((x) => /^COPY\s/i.test(x) && !x.includes('--from'))) {
      const parts = l.split(/\s+/).slice(1, -1)
      for (const p of parts) assert.ok(existsSync(join(ROOT, p)), `COPY ${p}: no such path in the repository`)
    }
    const runtime = dockerfile().at(-1)!
    const workdir = runtime.lines.find((l) => /^WORKDIR\s/i.test(l))!.split(/\s+/)[1]!
    const entry = runtime.lines.find((l) => /^ENTRYPOINT\s/i.test(l))!
    const target = JSON.parse(entry.slice('ENTRYPOINT'.length))[1] as string
    assert.ok(target.startsWith(`${workdir}/`))
    assert.ok(existsSync(join(ROOT, target.slice(workdir.length + 1))), `${target} is not in the package`)
    assert.deepEqual(JSON.parse(runtime.lines.find((l) => /^CMD\s/i.test(l))!.slice(3)), ['server'])
    assert.deepEqual(JSON.parse(read('package.json')).bin, { coffer: './bin/coffer.js' })
    for (const ignored of ['node_modules', 'dist', '.coffer']) assert.ok(read('.dockerignore').split('\n').includes(ignored))
  })
})

describe('compose file', () => {
  test('nodes run read-only as a user; the load balancer checks /readyz on each node’s port', () => {
    for (const [name, svc] of cofferServices()) {
      assert.equal(svc.read_only, true, `${name} read_only`)
      assert.match(svc.user ?? '', /^[1-9]\d*:[1-9]\d*$/, `${name} runs as a user`)
      assert.equal(svc.image, 'coffer:0.1.0')
    }
    const haproxy = read('deploy/compose/haproxy.cfg')
    assert.match(haproxy, /option httpchk GET \/readyz/)
    const port = cofferServices()[0]![1].environment!.COFFER_PORT
    for (const [name] of cofferServices()) assert.match(haproxy, new RegExp(`server ${name} ${name}:${port} check`))
    const lb = compose().services.lb as { ports?: string[]; volumes?: string[] }
    assert.match(lb.ports?.[0] ?? '', /^8080:8080$/)
    assert.match(haproxy, /bind :8080/)
    for (const v of [...(lb.volumes ?? []), ...((compose().services.postgres as { volumes?: string[] }).volumes ?? [])]) {
      const src = v.split(':')[0]!
      if (src.startsWith('./')) assert.ok(existsSync(join(ROOT, 'deploy/compose', src)), `${src} is missing`)
    }
  })
})

describe('Helm chart (templates not rendered here)', () => {
  test('Deployment, Service and PodDisruptionBudget; root key from a Secret; probes; read-only, non-root', () => {
    const t = helmTemplates()
    for (const kind of ['Deployment', 'Service', 'PodDisruptionBudget']) assert.match(t, new RegExp(`^kind: ${kind}$`, 'm'))
    assert.equal((parse(read('deploy/helm/coffer/Chart.yaml')) as { apiVersion: string }).apiVersion, 'v2')
    const v = helmValues()
    assert.match(
      t,
      /- name: COFFER_ROOT_KEY\n\s+valueFrom:\n\s+secretKeyRef:\n\s+name: \{\{ \.Values\.secret\.name \}\}\n\s+key: \{\{ \.Values\.secret\.rootKeyKey \}\}/,
    )
    assert.ok(v.secret.name && v.secret.rootKeyKey)
    assert.equal(v.probes.liveness.path, '/healthz')
    assert.equal(v.probes.readiness.path, '/readyz')
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'])
      assert.match(t, new RegExp(`${probe}:\\n\\s+httpGet:\\n\\s+path: .+\\n\\s+port: http`))
    assert.match(t, /containerPort: \{\{ \.Values\.port \}\}/)
    assert.match(t, /- name: COFFER_PORT\n\s+value: \{\{ \.Values\.port \| quote \}\}/)
    assert.match(t, /readOnlyRootFilesystem: true/)
    assert.match(t, /runAsNonRoot: true/)
    assert.ok(v.securityContext.runAsUser > 0)
    assert.match(t, /mountPath: \/var\/lib\/coffer/)
    assert.match(t, /mountPath: \/tmp/)
    assert.ok(v.podDisruptionBudget.minAvailable < v.replicaCount, 'the budget lets a node go')
  })
})

describe('the probes the files name are answered by the server', () => {
  let ctx: AppContext
  let app: FastifyInstance
  let dataDir: string
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'coffer-deploy-'))
    const e = readEnv({
      COFFER_DATA_DIR: dataDir,
      COFFER_LOG_LEVEL: 'silent',
      COFFER_CHECKPOINT_INTERVAL: '0',
      COFFER_AUDIT_VERIFY_INTERVAL: '0',
    })
    ctx = await createContext(buildConfig(e), buildSecrets(e))
    app = await buildApp(ctx)
    await app.ready()
  })
  after(async () => {
    await app?.close()
    await ctx?.close()
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  test('each probe path answers 200 on a ready node', async () => {
    const v = helmValues()
    const paths = new Set<string>([v.probes.liveness.path, v.probes.readiness.path, v.probes.startup.path, '/readyz'])
    const haproxy = read('deploy/compose/haproxy.cfg').match(/httpchk GET (\S+)/)![1]!
    paths.add(haproxy)
    for (const path of paths) {
      const r = await app.inject({ method: 'GET', url: path })
      assert.equal(r.statusCode, 200, `${path} answered ${r.statusCode}`)
    }
  })
})

describe('systemd unit', () => {
  test('sandboxed; the data directory is its state directory; ExecStart runs the package’s bin', () => {
    const text = unit()
    for (const opt of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'DynamicUser=yes',
      'CapabilityBoundingSet=',
      'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
      'SystemCallFilter=@system-service',
    ])
      assert.ok(text.split('\n').includes(opt), `missing ${opt}`)
    assert.equal(unitEnv().COFFER_DATA_DIR, '/var/lib/coffer')
    assert.match(text, /^StateDirectory=coffer$/m, 'the data directory is the state directory')
    const exec = text.match(/^ExecStart=(\S+) (\S+) server$/m)
    assert.ok(exec, 'ExecStart runs node on the package’s bin')
    assert.equal(exec[2], '/opt/coffer/bin/coffer.js')
    assert.ok(existsSync(join(ROOT, 'bin/coffer.js')))
  })

  test('systemd-analyze verify: no error, no warning', (t) => {
    const text = unit()
    const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' })
    if (which.status !== 0) {
      t.skip('systemd-analyze is not installed here: the unit was NOT verified')
      return
    }
    // verify needs ExecStart's binary to exist: point it at this machine's node.
    const dir = mkdtempSync(join(tmpdir(), 'coffer-unit-'))
    try {
      const file = join(dir, 'coffer.service')
      writeFileSync(file, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`))
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' })
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stderr.trim(), '', `systemd-analyze warned:\n${r.stderr}`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('Prometheus alert rules', () => {
  const RULES = 'deploy/prometheus/coffer-alerts.yml'
  type Rule = { alert: string; expr: string }
  const rules = () => (parse(read(RULES)) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules)

  test('cover the required conditions and name only exported metrics, counters through rate or increase', () => {
    const exported = new Map(new Metrics().all().map((m) => [m.name, m.type]))
    const names = rules().map((r) => r.alert)
    for (const required of [
      'CofferAuditIntegrityBroken',
      'CofferResealFailed',
      'CofferDatabaseUnavailable',
      'CofferBackupMissed',
      'CofferBackupFailed',
      'CofferRedisFallbackActive',
    ])
      assert.ok(names.includes(required), `no ${required} alert`)
    let seen = 0
    for (const r of rules()) {
      const metrics = [...r.expr.matchAll(/\bcoffer_[a-z0-9_]+/g)].map((m) => m[0])
      assert.ok(metrics.length > 0, `${r.alert} names no Coffer metric`)
      for (const m of metrics) {
        seen++
        assert.ok(exported.has(m), `${r.alert} uses ${m}, which /metrics does not export`)
        if (exported.get(m) === 'counter')
          assert.match(
            r.expr,
            new RegExp(`(rate|increase)\\(${m}(\\{[^}]*\\})?\\[`),
            `${r.alert}: the counter ${m} needs rate() or increase()`,
          )
      }
    }
    assert.ok(seen >= 6)
  })

  test('promtool: the rules load and their unit tests pass', () => {
    const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' })
    assert.equal(
      which.status,
      0,
      'promtool is missing: install the Debian package prometheus (scripts/system-deps.mjs does, as `npm test` runs it)',
    )
    const check = spawnSync('promtool', ['check', 'rules', join(ROOT, RULES)], { encoding: 'utf8' })
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`)
    const unitTests = spawnSync('promtool', ['test', 'rules', 'coffer-alerts.test.yml'], {
      cwd: join(ROOT, 'deploy/prometheus'),
      encoding: 'utf8',
    })
    assert.equal(unitTests.status, 0, `${unitTests.stdout}${unitTests.stderr}`)
  })
})
