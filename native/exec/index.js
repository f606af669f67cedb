// The compiled addon (build/Release/coffer_exec.node, made by `node-gyp rebuild` when npm
// installs this package). See exec.c.
module.exports = require('./build/Release/coffer_exec.node')
