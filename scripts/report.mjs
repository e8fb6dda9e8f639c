// `npm run report`: copies the reports the last complete test run generated (git-ignored, under .tmp/reports/)
// into docs/, where they are committed. Tests never write docs/ themselves, so a partial or failing run cannot
// replace a published report.
import { copyFileSync, existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const reports = [{ from: '.tmp/reports/reliability.md', to: 'docs/reliability.md', by: 'the fault suite (npm test)' }];

let missing = 0;
for (const { from, to, by } of reports) {
  if (!existsSync(root + from)) {
    console.error(`report: ${from} does not exist; run ${by} first`);
    missing += 1;
    continue;
  }
  copyFileSync(root + from, root + to);
  console.log(`report: ${to} <- ${from} (generated ${statSync(root + from).mtime.toISOString()})`);
}
process.exit(missing > 0 ? 1 : 0);
