"""The broker launcher formats a node's storage with the cluster's id, whatever characters the id holds."""

from broker.launch import Cluster, _kafka_cluster_id, resolve_jars
from tests.support import free_port_pair


def test_cluster_ids_never_start_with_a_dash():
    assert not any(_kafka_cluster_id().startswith("-") for _ in range(2000))  # 1 in 64 did before


def test_storage_is_formatted_even_when_the_saved_cluster_id_starts_with_a_dash(tmp_path):
    cluster = Cluster(nodes_count=1, base_port=free_port_pair(), data_dir=tmp_path / "kafka", log_dir=tmp_path / "log")
    cluster.data_dir.mkdir(parents=True)
    (cluster.data_dir / "cluster.id").write_text("-3KbGbYLQo2fYE8mHhJ5Ow\n")  # as an earlier launcher could write
    cluster.write_configs()
    cluster.format_storage(resolve_jars())
    meta = (cluster.nodes[0].data_dir / "data" / "meta.properties").read_text()
    assert "cluster.id=-3KbGbYLQo2fYE8mHhJ5Ow" in meta
