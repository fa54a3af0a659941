package images

import (
	"net/http"
	"sort"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// MaxMembers is Glance's default quota of members per image.
const MaxMembers = 128

func (m *Member) view(imageID string) map[string]any {
	return map[string]any{
		"member_id": m.MemberID, "image_id": imageID, "status": m.Status,
		"created_at": m.CreatedAt.Format(core.TimeFormat), "updated_at": m.UpdatedAt.Format(core.TimeFormat),
		"schema": "/v2/schemas/member",
	}
}

// producerImage finds an image for a member operation only its owner may make: anyone else,
// member or not, gets 404, as Glance hides the member list's write side.
func producerImage(w http.ResponseWriter, reg *Region, id, tenant string) *Image {
	img := reg.Images[id]
	if img == nil || img.Owner != tenant {
		core.Fail(w, 404, "No image found with ID %s", id)
		return nil
	}
	return img
}

func (s *Service) addMember(w http.ResponseWriter, r *http.Request, reg *Region, rname string) {
	var body struct {
		Member *string `json:"member"`
	}
	if !core.ReadJSON(w, r, &body) {
		return
	}
	if body.Member == nil || *body.Member == "" {
		core.Fail(w, 400, "The request body needs \"member\": the tenant id of the account to share with.")
		return
	}
	w, unlock := s.store.LockReply(w)
	defer unlock()
	if img := reg.Images[r.PathValue("id")]; img != nil && img.Visibility == "public" {
		core.Fail(w, 403, "Public images cannot have members.")
		return
	}
	if img := reg.Images[r.PathValue("id")]; img != nil && img.Visibility == "private" && s.isGeneric(rname) {
		// Glance (Zed) takes members only on shared images, and says so in HTML.
		core.Fail(w, 403, "Not allowed to create members for image %s.<br /><br />", img.ID)
		return
	}
	img := producerImage(w, reg, r.PathValue("id"), core.Caller(r))
	if img == nil {
		return
	}
	id := *body.Member
	switch {
	case id == img.Owner:
		core.Fail(w, 400, "An image cannot be shared with its owner.")
	case img.Members[id] != nil:
		core.Fail(w, 409, "Member %s is already associated with image %s.", id, img.ID)
	case len(img.Members) >= MaxMembers:
		core.Fail(w, 413, "Attempted to add image members past the limit of %d.", MaxMembers)
	default:
		t := core.Now()
		m := &Member{MemberID: id, Status: "pending", CreatedAt: t, UpdatedAt: t}
		img.Members[id] = m
		s.store.Commit()
		core.WriteJSON(w, 200, m.view(img.ID))
	}
}

func (s *Service) listMembers(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	tenant := core.Caller(r)
	w, unlock := s.store.LockReply(w)
	defer unlock()
	img := reg.Images[r.PathValue("id")]
	if img == nil || (img.Owner != tenant && img.Members[tenant] == nil) {
		core.Fail(w, 404, "No image found with ID %s", r.PathValue("id"))
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
	core.WriteJSON(w, 200, map[string]any{"members": out, "schema": "/v2/schemas/members"})
}

// memberOf finds member m of an image the caller is the owner of or is m; otherwise 404.
func memberOf(w http.ResponseWriter, reg *Region, id, m, tenant string) (*Image, *Member) {
	img := reg.Images[id]
	if img == nil || (img.Owner != tenant && tenant != m) || (img.Owner != tenant && img.Members[m] == nil) {
		core.Fail(w, 404, "No image found with ID %s", id)
		return nil, nil
	}
	mem := img.Members[m]
	if mem == nil {
		core.Fail(w, 404, "Member %s not found for image %s", m, id)
		return nil, nil
	}
	return img, mem
}

func (s *Service) getMember(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	w, unlock := s.store.LockReply(w)
	defer unlock()
	if img, m := memberOf(w, reg, r.PathValue("id"), r.PathValue("member"), core.Caller(r)); m != nil {
		core.WriteJSON(w, 200, m.view(img.ID))
	}
}

func (s *Service) updateMember(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	var body struct {
		Status string `json:"status"`
	}
	if !core.ReadJSON(w, r, &body) {
		return
	}
	tenant, mid := core.Caller(r), r.PathValue("member")
	w, unlock := s.store.LockReply(w)
	defer unlock()
	img, m := memberOf(w, reg, r.PathValue("id"), mid, tenant)
	if m == nil {
		return
	}
	if tenant != mid {
		core.Fail(w, 403, "Only the member %s may change its status; the owner cannot accept or reject on its behalf.", mid)
		return
	}
	if body.Status != "accepted" && body.Status != "rejected" && body.Status != "pending" {
		core.Fail(w, 400, "status must be accepted, rejected or pending, got %q", body.Status)
		return
	}
	m.Status, m.UpdatedAt = body.Status, core.Now()
	s.store.Commit()
	core.WriteJSON(w, 200, m.view(img.ID))
}

func (s *Service) deleteMember(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	s.onImage(w, r, reg, producerImage, func(w http.ResponseWriter, img *Image) {
		mid := r.PathValue("member")
		if img.Members[mid] == nil {
			core.Fail(w, 404, "Member %s not found for image %s", mid, img.ID)
			return
		}
		delete(img.Members, mid)
		s.store.Commit()
		w.WriteHeader(204)
	})
}
