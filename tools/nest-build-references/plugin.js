// A Nest CLI compiler plugin (nest-cli.json `compilerOptions.plugins`) that makes `nest build <app>` and
// `nest start <app>` build the projects the app's tsconfig references (here libs/etcd-discovery), as `tsc -b`
// does. The CLI's tsc builder compiles one program per app and never builds references, so without this an app
// started against the library's dist as it was last built.
//
// Types need nothing from here: the apps type-check against the library's sources (their tsconfig's
// `customConditions`), so the program the CLI created before loading this plugin already sees the library as it is.
// What this adds is the library's JavaScript, built before the app is emitted and started.
'use strict';

const { renameSync, writeFileSync } = require('node:fs');
const ts = require('typescript');

/**
 * Outputs are written beside their target and renamed over it: two sessions (`nest start greeter --watch` and
 * `nest start gateway --watch`) rebuild the library on the same edit, and an app one of them restarts must never
 * load a file the other has truncated and not yet rewritten.
 */
const system = {
  ...ts.sys,
  writeFile(path, data, writeByteOrderMark) {
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, writeByteOrderMark ? `\uFEFF${data}` : data);
    renameSync(temporary, path);
  },
};

const formatHost = {
  getCanonicalFileName: (fileName) => fileName,
  getCurrentDirectory: () => ts.sys.getCurrentDirectory(),
  getNewLine: () => ts.sys.newLine,
};

/** `nest start --watch` / `nest build --watch`: a failed library build must not end the session. */
const watching = process.argv.slice(2).some((argument) => argument === '--watch' || argument === '-w');

/**
 * Builds the referenced projects (and their references) like `tsc -b`. Their errors fail `nest build` and
 * `nest start` before the app is emitted or started; in watch mode they are printed and the watch goes on (the
 * next edit builds again), as an error in the app's own code would be.
 */
function buildReferences(projects) {
  const diagnostics = [];
  const host = ts.createSolutionBuilderHost(system, undefined, (diagnostic) => diagnostics.push(diagnostic), () => {});
  const status = ts.createSolutionBuilder(host, projects, {}).build();
  if (status === ts.ExitStatus.Success) return;
  const format = process.stderr.isTTY ? ts.formatDiagnosticsWithColorAndContext : ts.formatDiagnostics;
  if (diagnostics.length > 0) console.error(format(diagnostics, formatHost));
  console.error(`@demo/nest-build-references: building ${projects.join(', ')} failed (${diagnostics.length} error(s)).`);
  if (!watching) process.exit(1);
}

/** Called by the CLI with this plugin's options and the app's program, before every emit (also in watch mode). */
function before(_options, program) {
  const projects = (program.getProjectReferences() ?? []).filter(Boolean).map((reference) => reference.path);
  if (projects.length > 0) buildReferences(projects);
  return () => (sourceFile) => sourceFile;
}

module.exports = { before };
