// Latency histograms with hdr-histogram-js: values recorded in microseconds, summaries in milliseconds.
import * as hdr from 'hdr-histogram-js';

export function newHistogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

export function recordMs(histogram, ms) {
  histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
}

/** A histogram of the given millisecond values. */
export function histogramOf(values) {
  const histogram = newHistogram();
  for (const ms of values) recordMs(histogram, ms);
  return histogram;
}

/** A new histogram holding every value of `histograms`. */
export function merged(histograms) {
  const total = newHistogram();
  for (const histogram of histograms) total.add(histogram);
  return total;
}

const ms = (us) => Math.round(us) / 1000;

export function percentileMs(histogram, percentile) {
  return ms(histogram.getValueAtPercentile(percentile));
}

/** count, mean and the usual percentiles, in ms. */
export function summarize(histogram) {
  return {
    count: histogram.totalCount,
    mean: ms(histogram.mean),
    p50: percentileMs(histogram, 50),
    p90: percentileMs(histogram, 90),
    p99: percentileMs(histogram, 99),
    p999: percentileMs(histogram, 99.9),
    max: ms(histogram.maxValue),
  };
}
