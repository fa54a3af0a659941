// Package config holds imageflow's envconfig specifications (prefix IMAGEFLOW_):
// Temporal, NATS, the cloud account and worker tuning.
package config
