// Command dojo is the reference that bench/queue/run.sh measures ebb against: the dojo's Go
// producer and consumer as they are built, on go-redis and client_golang at pinned versions.
//
//	dojo producer -http 127.0.0.1:8080 -redis-server 127.0.0.1:6379 -redis-queue padok
//	dojo consumer -http 127.0.0.1:8081 -redis-server 127.0.0.1:6379 -per-msg 0 -log=false
//
// The producer answers POST /publish and POST /publish/{count} with one RPUSH per item on
// one connection, like the dojo's; the consumer takes items with BLPOP, works -per-msg on
// each (sleeping, or burning CPU with -cpu-burn) and counts it. Both serve /healthz and
// /metrics (producer_messages_published_total, consumer_messages_consumed_total).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

const message = "From Padok, with love 💜"

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "producer" && os.Args[1] != "consumer") {
		fmt.Fprintln(os.Stderr, "usage: dojo producer|consumer [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	flags := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := flags.String("http", ":8080", "address to serve /healthz and /metrics on")
	server := flags.String("redis-server", "redis-master:6379", "Redis host:port")
	queue := flags.String("redis-queue", "padok", "Redis list")
	perMsg := flags.Duration("per-msg", time.Second, "consumer: time spent on each item")
	cpuBurn := flags.Bool("cpu-burn", false, "consumer: burn CPU for -per-msg instead of sleeping")
	logItems := flags.Bool("log", true, "consumer: log each item, like the dojo's")
	_ = flags.Parse(os.Args[2:])

	client := redis.NewClient(&redis.Options{Addr: *server})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := client.Ping(context.Background()).Err(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "OK")
	})
	http.Handle("/metrics", promhttp.Handler())

	if mode == "producer" {
		produce(client, *queue)
	} else {
		go consume(client, *queue, *perMsg, *cpuBurn, *logItems)
	}
	log.Printf("%s serving on %s", mode, *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

func produce(client *redis.Client, queue string) {
	published := promauto.NewCounter(prometheus.CounterOpts{
		Name: "producer_messages_published_total",
		Help: "Messages pushed to the queue.",
	})
	publish := func(w http.ResponseWriter, r *http.Request, count int) {
		for i := 0; i < count; i++ {
			if err := client.RPush(r.Context(), queue, message).Err(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			published.Inc()
		}
		if count == 1 {
			fmt.Fprintln(w, "Message published 👌")
		} else {
			fmt.Fprintf(w, "%d messages published 👌\n", count)
		}
	}
	http.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		publish(w, r, 1)
	})
	http.HandleFunc("POST /publish/{count}", func(w http.ResponseWriter, r *http.Request) {
		count, err := strconv.Atoi(r.PathValue("count"))
		if err != nil || count < 1 {
			http.Error(w, "count must be a positive integer", http.StatusBadRequest)
			return
		}
		publish(w, r, count)
	})
}

func consume(client *redis.Client, queue string, perMsg time.Duration, cpuBurn, logItems bool) {
	consumed := promauto.NewCounter(prometheus.CounterOpts{
		Name: "consumer_messages_consumed_total",
		Help: "Messages taken from the queue and processed.",
	})
	ctx := context.Background()
	log.Println("Starting to consume messages...")
	for {
		popped, err := client.BLPop(ctx, time.Second, queue).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			log.Printf("BLPOP: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if logItems {
			log.Printf("Received a message: %q.", popped[1])
			log.Println("Processing message...")
		}
		work(perMsg, cpuBurn)
		if logItems {
			log.Println("Message processed.")
		}
		consumed.Inc()
	}
}

func work(perMsg time.Duration, cpuBurn bool) {
	if perMsg <= 0 {
		return
	}
	if !cpuBurn {
		time.Sleep(perMsg)
		return
	}
	for deadline := time.Now().Add(perMsg); time.Now().Before(deadline); {
	}
}
