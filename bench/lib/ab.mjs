// Alternating rounds. With two variants, group i runs A,B when i is even and B,A when odd; with more, the
// order rotates (A,B,C / B,C,A / C,A,B ...). Drift in the machine's load (other jobs on a shared, noisy
// host) then falls on every variant alike, and each group's ratios compare rounds run seconds apart.
export async function rotate(groups, variants, runRound, onGroup) {
  const names = Object.keys(variants);
  const results = [];
  for (let i = 0; i < groups; i++) {
    const order = names.length === 2
      ? (i % 2 === 0 ? names : [...names].reverse())
      : names.map((_, k) => names[(i + k) % names.length]);
    const group = {};
    for (const name of order) group[name] = await runRound(name, i);
    results.push({ order, ...group });
    onGroup?.(i, group, order);
  }
  return results;
}
