// Worker thread of a VerifyWorkers pool made with `exportFilesOnly` (the CLI's offline
// `coffer audit verify --file`): verifies runs of an export file and loads no database code.
import { exportFileRows } from './export-file-rows.js'
import { serveVerifyRuns } from './verify-run.js'

serveVerifyRuns((t) => {
  if (t.source.engine !== 'export-file') throw new Error('this thread reads export files only')
  return exportFileRows(t.source, t.workspaceId)
})
