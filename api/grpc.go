package api

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// Info describes the serving node for Status.
type Info struct {
	NodeID    string
	Version   string
	StartedAt time.Time
	Replicas  int
	// Addresses this node is reached at, as it announces them (its
	// advertised addresses; "" when not served).
	GRPCAddr, HTTPAddr, SIPAddr string
	// WalkRate is the most records a second a dump or count reads (the
	// node's --repair-rate); a caller may ask for less. 0: 5000.
	WalkRate int
}

// StatusSource supplies the cluster part of Status. A single node on the
// embedded store has none; the ring provides one.
type StatusSource interface {
	Status(ctx context.Context, into *locsvcv1.StatusResponse)
}

// Server implements LocationService, ClusterService and AdminService
// (admin.go) over a core Service.
type Server struct {
	locsvcv1.UnimplementedLocationServiceServer
	locsvcv1.UnimplementedClusterServiceServer
	locsvcv1.UnimplementedAdminServiceServer

	svc     *locsvc.Service
	info    Info
	cluster StatusSource
	drainer DrainFunc // nil: Drain is refused (drain.go)
	health  *health.Server
	// walks ends with StopWalks (admin.go).
	walks     context.Context
	stopWalks context.CancelCauseFunc
}

// NewServer serves svc; cluster may be nil for a single embedded node.
func NewServer(svc *locsvc.Service, info Info, cluster StatusSource) *Server {
	s := &Server{svc: svc, info: info, cluster: cluster, health: health.NewServer()}
	s.walks, s.stopWalks = context.WithCancelCause(context.Background())
	return s
}

// Register implements LocationService.
func (s *Server) Register(ctx context.Context, in *locsvcv1.RegisterRequest) (*locsvcv1.RegisterResponse, error) {
	res, err := s.svc.Register(ctx, RequestFromProto(in))
	if err != nil {
		return nil, toStatus(err)
	}
	return &locsvcv1.RegisterResponse{Aor: res.AoR, Bindings: BindingsToProto(res.Bindings, res.Now)}, nil
}

// Lookup implements LocationService.
func (s *Server) Lookup(ctx context.Context, in *locsvcv1.LookupRequest) (*locsvcv1.LookupResponse, error) {
	res, err := s.svc.Lookup(ctx, in.GetAor())
	if err != nil {
		return nil, toStatus(err)
	}
	return &locsvcv1.LookupResponse{Aor: res.AoR, Bindings: BindingsToProto(res.Bindings, res.Now), Known: res.Known}, nil
}

// Unbind implements LocationService.
func (s *Server) Unbind(ctx context.Context, in *locsvcv1.UnbindRequest) (*locsvcv1.UnbindResponse, error) {
	out, err := s.unbind(ctx, in)
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

// unbind serves Unbind for both transports; its errors are the core's, for
// each transport to render.
func (s *Server) unbind(ctx context.Context, in *locsvcv1.UnbindRequest) (*locsvcv1.UnbindResponse, error) {
	refs, err := RefsFromProto(in.GetBindings())
	if err != nil {
		return nil, err
	}
	res, n, err := s.svc.Unbind(ctx, in.GetAor(), refs)
	if err != nil {
		return nil, err
	}
	return &locsvcv1.UnbindResponse{Aor: res.AoR, Removed: uint32(n), Bindings: BindingsToProto(res.Bindings, res.Now)}, nil
}

// Status implements ClusterService.
func (s *Server) Status(ctx context.Context, _ *locsvcv1.StatusRequest) (*locsvcv1.StatusResponse, error) {
	out := &locsvcv1.StatusResponse{
		NodeId: s.info.NodeID, Version: s.info.Version, StartedAt: timestamppb.New(s.info.StartedAt),
		Replicas: uint32(s.info.Replicas),
	}
	if s.cluster != nil {
		s.cluster.Status(ctx, out)
		return out, nil
	}
	out.Store = "embedded"
	out.Replicas = 1
	out.Members = []*locsvcv1.Member{{
		NodeId: s.info.NodeID, GrpcAddr: s.info.GRPCAddr, HttpAddr: s.info.HTTPAddr, SipAddr: s.info.SIPAddr,
		State: "active", Alive: true,
	}}
	out.Shards = []*locsvcv1.Shard{{Id: "embedded", NodeId: s.info.NodeID, Healthy: true, Ownership: 1}}
	out.Repair = &locsvcv1.Repair{}
	return out, nil
}

// RegisterGRPC adds the services, gRPC health and reflection to g.
func (s *Server) RegisterGRPC(g *grpc.Server) {
	locsvcv1.RegisterLocationServiceServer(g, s)
	locsvcv1.RegisterClusterServiceServer(g, s)
	locsvcv1.RegisterAdminServiceServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
	reflection.Register(g)
}

// SetServing flips gRPC health for the whole server and the location
// service: NOT_SERVING while draining so load balancers move away first.
func (s *Server) SetServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(locsvcv1.LocationService_ServiceDesc.ServiceName, st)
}
