// A Nest CLI compiler plugin (nest-cli.json `compilerOptions.plugins`) that makes `nest build <app>` and
// `nest start <app>` build the projects the app's tsconfig references (here libs/etcd-discovery), as `tsc -b`
// does. The CLI's tsc builder compiles one program per app and never builds references, so without this an app
// started against the library's dist as it was last built.
//
// Types need nothing from here: the apps type-check against the library's sources (their tsconfig's
// `customConditions`), so the program the CLI created before loading this plugin already sees the library as it is.
// What this adds is the library's JavaScript, built before the app is emitted and started.
'use strict';

const ts = require('typescript');

const formatHost = {
  getCanonicalFileName: (fileName) => fileName,
  getCurrentDirectory: () => ts.sys.getCurrentDirectory(),
  getNewLine: () => ts.sys.newLine,
};

/** Builds the referenced projects (and their references) like `tsc -b`; their errors fail the CLI's command. */
function buildReferences(projects) {
  const diagnostics = [];
  const host = ts.createSolutionBuilderHost(ts.sys, undefined, (diagnostic) => diagnostics.push(diagnostic), () => {});
  const status = ts.createSolutionBuilder(host, projects, {}).build();
  if (status !== ts.ExitStatus.Success) {
    if (diagnostics.length > 0) console.error(ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost));
    console.error(`@demo/nest-build-references: building ${projects.join(', ')} failed (${diagnostics.length} error(s)).`);
    process.exit(1);
  }
}

/** Called by the CLI with this plugin's options and the app's program, before every emit (also in watch mode). */
function before(_options, program) {
  const projects = (program.getProjectReferences() ?? []).filter(Boolean).map((reference) => reference.path);
  if (projects.length > 0) buildReferences(projects);
  return () => (sourceFile) => sourceFile;
}

module.exports = { before };
