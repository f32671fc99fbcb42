package harness

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what a closed-loop load run measured.
type Result struct {
	Requests  int
	Errors    int
	FirstErr  error
	Elapsed   time.Duration
	latencies []time.Duration // of successful requests, sorted
}

// RPS is successful requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / r.Elapsed.Seconds()
}

// Percentile returns the latency at q (0 < q <= 1) of successful requests.
func (r Result) Percentile(q float64) time.Duration { return Percentile(r.latencies, q) }

// Percentile returns the value at q (0 < q <= 1) of sorted durations, 0
// when there are none.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Run keeps workers requests in flight for d (or until ctx ends, or until
// limit requests were sent when limit > 0): each worker calls its own
// function, made by newWorker, in a loop. It is a closed-loop generator,
// like wrk: latency is measured from the request's start. The workers are
// made (newWorker may do set-up requests) before the clock starts; started,
// when not nil, is called once they are, just before the load begins.
func Run(ctx context.Context, workers int, d time.Duration, limit int, newWorker func() func() error, started ...func()) Result {
	funcs := make([]func() error, workers)
	var setup sync.WaitGroup
	for i := range funcs {
		setup.Go(func() { funcs[i] = newWorker() })
	}
	setup.Wait()
	for _, f := range started {
		f()
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu    sync.Mutex // guards res
		res   Result
		sent  atomic.Int64
		wg    sync.WaitGroup
		start = time.Now()
	)
	take := func() bool { return limit <= 0 || sent.Add(1) <= int64(limit) }
	for _, do := range funcs {
		wg.Go(func() {
			var lat []time.Duration
			var errs int
			var first error
			for ctx.Err() == nil && take() {
				t0 := time.Now()
				if err := do(); err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.Requests += len(lat) + errs
			res.Errors += errs
			if res.FirstErr == nil {
				res.FirstErr = first
			}
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.latencies)
	return res
}
