package images

import (
	"net/http"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// Glance's JSON schemas, as /v2/schemas/{image,images,member,members,task,tasks} serve them.
// python-glanceclient builds its models from these (warlock validates every image, member and
// task it reads against them, and image-update reads "is_base" to tell core attributes from
// properties), so a stub breaks every command. The shapes follow upstream Glance (Zed) with
// Rackspace's own properties added, as Rackspace's Cloud Images serves them.

// nullable is a JSON-schema type that also admits null.
func nullable(typ string) []string { return []string{"null", typ} }

func str(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }

func readOnly(m map[string]any) map[string]any {
	m["readOnly"] = true
	return m
}

// extra is a property that is not a core attribute: image-update may remove it.
func extra(desc string) map[string]any {
	return map[string]any{"type": "string", "description": desc, "is_base": false}
}

const uuidPattern = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"

func imageSchema() map[string]any {
	props := map[string]any{
		"id": map[string]any{
			"type":        "string",
			"description": "An identifier for the image",
			"pattern":     uuidPattern,
		},
		"name": map[string]any{
			"type":        nullable("string"),
			"description": "Descriptive name for the image",
			"maxLength":   255,
		},
		"status": readOnly(
			map[string]any{"type": "string", "description": "Status of the image", "enum": imageStatuses},
		),
		"visibility": map[string]any{
			"type":        "string",
			"description": "Scope of image accessibility",
			"enum":        []string{"community", "public", "private", "shared"},
		},
		"protected": map[string]any{"type": "boolean", "description": "If true, image will not be deletable."},
		"os_hidden": map[string]any{
			"type":        "boolean",
			"description": "If true, image will not appear in default image list response.",
		},
		"checksum": readOnly(
			map[string]any{"type": nullable("string"), "description": "md5 hash of image contents.", "maxLength": 32},
		),
		"os_hash_algo": readOnly(
			map[string]any{"type": nullable("string"), "description": "Algorithm to calculate the os_hash_value",
				"maxLength": 64},
		),
		"os_hash_value": readOnly(
			map[string]any{"type": nullable("string"), "description": "Hexdigest of the image contents",
				"maxLength": 128},
		),
		"owner": map[string]any{
			"type":        nullable("string"),
			"description": "Owner of the image",
			"maxLength":   255,
		},
		"size": readOnly(
			map[string]any{"type": nullable("integer"), "description": "Size of image file in bytes"},
		),
		"virtual_size": readOnly(
			map[string]any{"type": nullable("integer"), "description": "Virtual size of image in bytes"},
		),
		"container_format": map[string]any{
			"type":        nullable("string"),
			"description": "Format of the container",
			"enum":        containerFormats,
		},
		"disk_format": map[string]any{
			"type":        nullable("string"),
			"description": "Format of the disk",
			"enum":        diskFormats,
		},
		"created_at": readOnly(str("Date and time of image registration")),
		"updated_at": readOnly(str("Date and time of the last image modification")),
		"tags": map[string]any{"type": "array", "description": "List of strings related to the image",
			"items": map[string]any{"type": "string", "maxLength": 255}},
		"direct_url": readOnly(str("URL to access the image file kept in external store")),
		"min_ram":    map[string]any{"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
		"min_disk": map[string]any{
			"type":        "integer",
			"description": "Amount of disk space (in GB) required to boot image.",
		},
		"self":   readOnly(str("An image self url")),
		"file":   readOnly(str("An image file url")),
		"schema": readOnly(str("An image schema url")),
		"locations": map[string]any{
			"type":        "array",
			"description": "A set of URLs to access the image file kept in external store",
			"items": map[string]any{"type": "object", "properties": map[string]any{
				"url": map[string]any{
					"type":      "string",
					"maxLength": 255,
				}, "metadata": map[string]any{"type": "object"}},
				"required": []string{"url", "metadata"}},
		},
		"kernel_id": map[string]any{
			"type":        nullable("string"),
			"pattern":     uuidPattern,
			"is_base":     false,
			"description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.",
		},
		"ramdisk_id": map[string]any{
			"type":        nullable("string"),
			"pattern":     uuidPattern,
			"is_base":     false,
			"description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.",
		},
		"instance_uuid": extra(
			"Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)",
		),
		"architecture": extra(
			"Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
		),
		"os_distro": extra(
			"Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
		),
		"os_version":       extra("Operating system version as specified by the distributor."),
		"description":      extra("A human-readable string describing this image."),
		"cim_pasd_cpu":     extra("CIM processor allocation setting data"),
		"base_image_ref":   extra("Rackspace: the base image a snapshot was taken from."),
		"image_type":       extra("Rackspace: base, snapshot or import."),
		"os_type":          extra("Rackspace: linux or windows."),
		"vm_mode":          extra("Rackspace: hvm or xen."),
		"auto_disk_config": extra("Rackspace: whether the disk is resized on build."),
	}
	return map[string]any{
		"name": "image", "properties": props,
		"additionalProperties": map[string]any{"type": "string"},
		"links": []any{
			map[string]any{"rel": "self", "href": "{self}"},
			map[string]any{"rel": "enclosure", "href": "{file}"},
			map[string]any{"rel": "describedby", "href": "{schema}"},
		},
	}
}

var (
	imageStatuses = []string{"queued", "saving", "active", "killed", "deleted", "uploading", "importing",
		"pending_delete", "deactivated"}
	containerFormats = []any{nil, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
	diskFormats      = []any{nil, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
)

// collection is the schema of a listing: items of the item schema plus paging links.
func collection(name string, item map[string]any, paged bool) map[string]any {
	props := map[string]any{
		name:     map[string]any{"type": "array", "items": item},
		"schema": map[string]any{"type": "string"},
	}
	links := []any{map[string]any{"rel": "describedby", "href": "{schema}"}}
	if paged {
		props["first"] = map[string]any{"type": "string"}
		props["next"] = map[string]any{"type": "string"}
		links = []any{
			map[string]any{"rel": "first", "href": "{first}"},
			map[string]any{"rel": "next", "href": "{next}"},
			map[string]any{"rel": "describedby", "href": "{schema}"},
		}
	}
	return map[string]any{"name": name, "properties": props, "links": links}
}

func memberSchema() map[string]any {
	return map[string]any{"name": "member", "properties": map[string]any{
		"created_at": str("Date and time of image member creation"),
		"image_id": map[string]any{
			"type":        "string",
			"description": "An identifier for the image",
			"pattern":     uuidPattern,
		},
		"member_id": str("An identifier for the image member (tenantId)"),
		"schema":    readOnly(str("")),
		"status": map[string]any{"type": "string", "description": "The status of this image member",
			"enum": []string{"pending", "accepted", "rejected"}},
		"updated_at": str("Date and time of last modification of image member"),
	}}
}

func taskSchema() map[string]any {
	return map[string]any{"name": "task", "properties": taskProperties(true)}
}

// taskProperties are a task's fields; listings leave out input, result and message.
func taskProperties(full bool) map[string]any {
	p := map[string]any{
		"id": map[string]any{"type": "string", "description": "An identifier for the task", "pattern": uuidPattern},
		"type": map[string]any{
			"type":        "string",
			"description": "The type of task represented by this content",
			"enum":        []string{"import", "export"},
		},
		"status": map[string]any{"type": "string", "description": "The current status of this task",
			"enum": []string{"pending", "processing", "success", "failure"}},
		"owner": map[string]any{
			"type":        nullable("string"),
			"description": "An identifier for the owner of this task",
		},
		"expires_at": map[string]any{
			"type":        nullable("string"),
			"description": "Datetime when this resource would be subject to removal",
		},
		"created_at": str("Datetime when this resource was created"),
		"updated_at": str("Datetime when this resource was updated"),
		"self":       str(""),
		"schema":     str(""),
	}
	if full {
		p["input"] = map[string]any{"type": "object", "description": "The parameters required by task, JSON blob"}
		p["result"] = map[string]any{"type": nullable("object"), "description": "The result of current task, JSON blob"}
		p["message"] = str("Human-readable informative message only included when appropriate (usually on failure)")
	}
	return p
}

func schemas() map[string]map[string]any {
	return map[string]map[string]any{
		"image":   imageSchema(),
		"images":  collection("images", imageSchema(), true),
		"member":  memberSchema(),
		"members": collection("members", memberSchema(), false),
		"task":    taskSchema(),
		"tasks":   collection("tasks", map[string]any{"name": "task", "properties": taskProperties(false)}, true),
	}
}

func serveSchema(w http.ResponseWriter, r *http.Request) {
	s, ok := schemas()[r.PathValue("name")]
	if !ok {
		core.Fail(w, 404, "Schema %s was not found.", r.PathValue("name"))
		return
	}
	core.WriteJSON(w, 200, s)
}
