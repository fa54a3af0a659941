package emulator

import (
	"net/http"
	"sort"
)

const maxMembers = 128

func (m *member) view(imageID string) map[string]any {
	return map[string]any{
		"member_id": m.MemberID, "image_id": imageID, "status": m.Status,
		"created_at": m.CreatedAt.Format(timeFormat), "updated_at": m.UpdatedAt.Format(timeFormat),
		"schema": "/v2/schemas/member",
	}
}

// producerImage finds an image for a member operation only its owner may make: anyone else,
// member or not, gets 404, as Glance hides the member list's write side.
func producerImage(w http.ResponseWriter, reg *region, id, tenant string) *image {
	img := reg.Images[id]
	if img == nil || img.Owner != tenant {
		fail(w, 404, "No image found with ID %s", id)
		return nil
	}
	return img
}

func (e *Emulator) addMember(w http.ResponseWriter, r *http.Request, reg *region, rname string) {
	var body struct {
		Member *string `json:"member"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Member == nil || *body.Member == "" {
		fail(w, 400, "The request body needs \"member\": the tenant id of the account to share with.")
		return
	}
	w, unlock := e.lockReply(w)
	defer unlock()
	if img := reg.Images[r.PathValue("id")]; img != nil && img.Visibility == "public" {
		fail(w, 403, "Public images cannot have members.")
		return
	}
	if img := reg.Images[r.PathValue("id")]; img != nil && img.Visibility == "private" && e.isGeneric(rname) {
		// Glance (Zed) takes members only on shared images, and says so in HTML.
		fail(w, 403, "Not allowed to create members for image %s.<br /><br />", img.ID)
		return
	}
	img := producerImage(w, reg, r.PathValue("id"), caller(r))
	if img == nil {
		return
	}
	id := *body.Member
	switch {
	case id == img.Owner:
		fail(w, 400, "An image cannot be shared with its owner.")
	case img.Members[id] != nil:
		fail(w, 409, "Member %s is already associated with image %s.", id, img.ID)
	case len(img.Members) >= maxMembers:
		fail(w, 413, "Attempted to add image members past the limit of %d.", maxMembers)
	default:
		t := now()
		m := &member{MemberID: id, Status: "pending", CreatedAt: t, UpdatedAt: t}
		img.Members[id] = m
		e.commit()
		writeJSON(w, 200, m.view(img.ID))
	}
}

func (e *Emulator) listMembers(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	tenant := caller(r)
	w, unlock := e.lockReply(w)
	defer unlock()
	img := reg.Images[r.PathValue("id")]
	if img == nil || (img.Owner != tenant && img.Members[tenant] == nil) {
		fail(w, 404, "No image found with ID %s", r.PathValue("id"))
		return
	}
	ids := make([]string, 0, len(img.Members))
	for id := range img.Members {
		if img.Owner == tenant || id == tenant {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	out := []any{}
	for _, id := range ids {
		out = append(out, img.Members[id].view(img.ID))
	}
	writeJSON(w, 200, map[string]any{"members": out, "schema": "/v2/schemas/members"})
}

// memberOf finds member m of an image the caller is the owner of or is m; otherwise 404.
func memberOf(w http.ResponseWriter, reg *region, id, m, tenant string) (*image, *member) {
	img := reg.Images[id]
	if img == nil || (img.Owner != tenant && tenant != m) || (img.Owner != tenant && img.Members[m] == nil) {
		fail(w, 404, "No image found with ID %s", id)
		return nil, nil
	}
	mem := img.Members[m]
	if mem == nil {
		fail(w, 404, "Member %s not found for image %s", m, id)
		return nil, nil
	}
	return img, mem
}

func (e *Emulator) getMember(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	w, unlock := e.lockReply(w)
	defer unlock()
	if img, m := memberOf(w, reg, r.PathValue("id"), r.PathValue("member"), caller(r)); m != nil {
		writeJSON(w, 200, m.view(img.ID))
	}
}

func (e *Emulator) updateMember(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	var body struct {
		Status string `json:"status"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	tenant, mid := caller(r), r.PathValue("member")
	w, unlock := e.lockReply(w)
	defer unlock()
	img, m := memberOf(w, reg, r.PathValue("id"), mid, tenant)
	if m == nil {
		return
	}
	if tenant != mid {
		fail(w, 403, "Only the member %s may change its status; the owner cannot accept or reject on its behalf.", mid)
		return
	}
	if body.Status != "accepted" && body.Status != "rejected" && body.Status != "pending" {
		fail(w, 400, "status must be accepted, rejected or pending, got %q", body.Status)
		return
	}
	m.Status, m.UpdatedAt = body.Status, now()
	e.commit()
	writeJSON(w, 200, m.view(img.ID))
}

func (e *Emulator) deleteMember(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	e.onImage(w, r, reg, producerImage, func(w http.ResponseWriter, img *image) {
		mid := r.PathValue("member")
		if img.Members[mid] == nil {
			fail(w, 404, "Member %s not found for image %s", mid, img.ID)
			return
		}
		delete(img.Members, mid)
		e.commit()
		w.WriteHeader(204)
	})
}
