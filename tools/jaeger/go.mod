// Module jaeger builds the Jaeger v2 all-in-one that `go run ./devstack --tracing` starts, kept
// apart from imageflow's own module so a plain build of imageflow does not grow by Jaeger's
// dependencies.
module github.com/imageflow/imageflow/tools/jaeger

go 1.26

require github.com/jaegertracing/jaeger v1.75.0

// Jaeger's own go.mod pins sarama so; a module that builds it must say the same.
replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0
