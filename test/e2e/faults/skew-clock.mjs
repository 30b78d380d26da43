// Preloaded with `node --import` by the skewed-clock fault test: this process's clock (Date.now and
// new Date()) runs FRAISIER_TEST_CLOCK_SKEW_MS milliseconds off the machine's, as on a deployer whose
// clock is wrong. The database's clock is untouched.
const skew = Number(process.env.FRAISIER_TEST_CLOCK_SKEW_MS ?? 0);
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);
class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + skew);
    else super(...args);
  }
  static now() {
    return realNow() + skew;
  }
}
globalThis.Date = SkewedDate;
