function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c)
}

/**
 * A readable, self-contained API reference page (no scripts, no external assets) listing every
 * operation of the OpenAPI document, grouped by tag; the count it prints is the number it lists.
 * Every string from the document is escaped.
 */
export function docsPage(doc: {
  paths: Record<
    string,
    Record<
      string,
      {
        summary: string
        tags: string[]
        parameters: Array<{ name: string; in: string; required: boolean }>
        requestBody?: { content: { 'application/json': { schema: unknown } } }
        'x-coffer-action': string
      }
    >
  >
}): string {
  let listed = 0
  const byTag = new Map<string, string[]>()
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = op.parameters
        .map((p) => `<code>${esc(p.name)}</code> <small>${esc(p.in)}${p.required ? ', required' : ''}</small>`)
        .join(', ')
      const body = op.requestBody
        ? `<details><summary>Body</summary><pre>${esc(JSON.stringify(op.requestBody.content['application/json'].schema, null, 2))}</pre></details>`
        : ''
      const html = `<section><h3><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></h3><p>${esc(op.summary)}</p><p><small>Policy action: <code>${esc(op['x-coffer-action'])}</code></small></p>${params ? `<p>Parameters: ${params}</p>` : ''}${body}</section>`
      const tag = op.tags[0] ?? 'other'
      byTag.set(tag, [...(byTag.get(tag) ?? []), html])
      listed++
    }
  }
  const sections = [...byTag.entries()].map(([tag, items]) => `<h2>${esc(tag)}</h2>${items.join('\n')}`).join('\n')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Coffer API</title><link rel="stylesheet" href="/docs/style.css"></head><body><main><h1>Coffer API</h1><p>${listed} endpoints under <code>/v1</code>. Send <code>Authorization: Bearer &lt;token&gt;</code>. Errors: <code>{"error":{"code","message","requestId"}}</code> with stable codes. Machine-readable: <a href="/v1/openapi.json">/v1/openapi.json</a>. Without a token: <code>/healthz</code>, <code>/readyz</code>, <code>/metrics</code> (Prometheus) and <code>/v1/audit/public-key</code> (the key that signs audit checkpoints).</p>${sections}</main></body></html>`
}

export const DOCS_CSS = `body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#fafafa;color:#222}main{max-width:920px;margin:0 auto;padding:24px}h2{border-bottom:1px solid #ddd;text-transform:capitalize;margin-top:2em}section{background:#fff;border:1px solid #e4e4e4;border-radius:6px;padding:8px 16px;margin:12px 0}h3{font-size:15px;margin:8px 0}.m{display:inline-block;min-width:60px;font-weight:700}.get{color:#1565c0}.post{color:#2e7d32}.put{color:#ef6c00}.delete{color:#c62828}pre{background:#f4f4f4;padding:8px;overflow:auto}code{font-family:ui-monospace,monospace}`
