// Package activities wraps each Cloud Images and Cloud Files call as a Temporal activity.
package activities
