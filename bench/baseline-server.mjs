// The baseline of bench/http.ts: a bare Fastify server on 127.0.0.1 (a free port) that
// answers GET with a small JSON body shaped and sized like Coffer's single-secret answer.
// No logger, no hooks, no auth, no database: the cost of Node + Fastify + JSON alone.
import { randomBytes, randomUUID } from 'node:crypto'
import Fastify from 'fastify'

const now = new Date().toISOString()
const body = {
  secret: {
    id: randomUUID(),
    key: 'BENCH_SECRET_000',
    version: 1,
    deleted: false,
    tags: [],
    createdAt: now,
    updatedAt: now,
    value: randomBytes(30).toString('base64url'),
    comment: null,
  },
}

const app = Fastify({ logger: false })
app.get('/*', async () => body)

const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
process.stdout.write(`baseline listening on ${address}\n`)

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
