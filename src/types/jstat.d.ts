/** The part of jstat (which ships no types) that src/experiments/stats.ts uses. */
declare module "jstat" {
  const jStat: {
    studentt: { inv(p: number, dof: number): number };
    binomial: { cdf(k: number, n: number, p: number): number };
  };
  export default jStat;
}
