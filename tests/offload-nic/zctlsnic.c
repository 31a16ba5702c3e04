// SPDX-License-Identifier: GPL-2.0-only
/*
 * zctlsnic: a pair of test network devices that model a NIC with TLS TX
 * offload, for zctls's kTLS bench.  Never load it into a kernel you use.
 *
 *   ip link add zcn0 type zctlsnic
 *   ip link add zcn1 link zcn0 type zctlsnic   # zcn1 is zcn0's peer
 *
 * What a frame sent on one device becomes is what the other receives, as
 * with veth.  Each device offers NETIF_F_HW_TLS_TX, so a kTLS socket whose
 * route leaves through it gets device offload (net/tls/tls_device.c,
 * tls_set_device_offload: TLS 1.2, AES-GCM only) and hands the device
 * plaintext records.  Where a real NIC would encrypt them while DMA-ing the
 * frame, ndo_start_xmit calls the kernel's own software fallback,
 * tls_encrypt_skb() (net/tls/tls_device_fallback.c, exported for drivers:
 * nfp, funeth and chcr use it), which reads the record's pages at that
 * moment, and delivers the ciphertext to the peer.  So a retransmission
 * carries whatever the page cache holds when it leaves, as on a NIC.
 *
 * Beyond a real NIC's counters (ethtool -S: tx_tls_encrypted_packets, ...,
 * named as mlx5 names them), it reports an independent witness of zerocopy:
 * the payload bytes of offloaded frames that sat in page-cache pages
 * (tx_tls_pagecache_bytes: TLS_TX_ZEROCOPY_RO on, tls_device took the
 * file's pages) versus in other pages (tx_tls_private_bytes: the copies
 * tls_device made, record headers and tags).  And a loss control, for
 * retransmissions at a moment of the test's choosing:
 *
 *   echo N > /sys/class/net/zcn0/zctlsnic/loss   # drop the Nth data frame
 *                                                # of an offloaded flow from
 *                                                # now on, and hold (drop)
 *                                                # every retransmission of
 *                                                # its bytes ...
 *   echo @B > /sys/class/net/zcn0/zctlsnic/loss  # or the first frame that
 *                                                # reaches byte B of a flow's
 *                                                # stream since its TX key
 *   echo 0 > /sys/class/net/zcn0/zctlsnic/loss   # ... until released
 *
 * Fidelity limits: there is no DMA, so nothing is read later than the
 * transmit call; and the fallback keeps no crypto state between frames, so
 * a record whose frames are first sent before and after its bytes change
 * fails authentication where a NIC that keeps state for in-order frames
 * (mlx5) would send a torn record that authenticates.
 */
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/pagemap.h>
#include <linux/version.h>
#include <net/rtnetlink.h>
#include <net/tcp.h>
#include <net/tls.h>

#define DRV_NAME "zctlsnic"

#define ZC_STATS(X)                                                          \
	X(tx_tls_encrypted_packets)  /* frames (GSO segments) encrypted */   \
	X(tx_tls_encrypted_bytes)    /* their TCP payload */                 \
	X(tx_tls_ctx)                /* tls_dev_add, TX */                   \
	X(tx_tls_del)                /* tls_dev_del, TX */                   \
	X(tx_tls_ooo)                /* offloaded frames starting before     \
				      * the flow's furthest byte sent:       \
				      * retransmissions */                   \
	X(tx_tls_drop_no_sync_data)  /* the fallback gave nothing back */    \
	X(tx_tls_pagecache_bytes)    /* payload in page-cache pages */       \
	X(tx_tls_private_bytes)      /* payload in other memory */           \
	X(tx_tls_loss_dropped)       /* frames dropped by the loss control */\
	X(tx_tls_loss_held)          /* retransmissions of them held */      \
	X(tx_packets) X(tx_bytes) X(tx_dropped) X(rx_packets) X(rx_bytes)

#define ZC_ENUM(name) ZC_##name,
enum zc_stat { ZC_STATS(ZC_ENUM) ZC_NSTATS };
#undef ZC_ENUM

#define ZC_NAME(name) #name,
static const char zc_stat_names[ZC_NSTATS][ETH_GSTRING_LEN] = { ZC_STATS(ZC_NAME) };
#undef ZC_NAME

struct zc_priv {
	struct net_device __rcu *peer;
	atomic64_t stats[ZC_NSTATS];
	/* Loss control: countdown > 0 or at_byte >= 0 is armed; hold_sk set
	 * is holding. */
	spinlock_t loss_lock;
	bool loss_active;
	long countdown;
	long long at_byte;
	/* Compared, never dereferenced: a socket freed and another made at the
	 * same address with overlapping sequence numbers would be held too
	 * (a test device; tests release a hold before their next socket). */
	const struct sock *hold_sk;
	u32 hold_start, hold_end;
};

/* What the device keeps per offloaded socket, in the room tls_device
 * leaves drivers (TLS_DRIVER_STATE_SIZE_TX bytes, __tls_driver_ctx). */
struct zc_flow {
	u32 start_seq; /* the first byte after the TX key */
	u32 next_seq;
};

static void zc_add(struct zc_priv *p, enum zc_stat s, u64 n)
{
	atomic64_add(n, &p->stats[s]);
}

/* An skb of a socket whose TX records this kind of device makes: the test
 * of tls_is_sk_tx_device_offloaded (6.1) / tls_is_skb_tx_device_offloaded
 * (6.12 on), plus that this device is the socket's offload device
 * (tls_validate_xmit_skb encrypts in software for any other). */
static bool zc_offloaded(const struct sk_buff *skb, const struct net_device *dev)
{
	struct sock *sk = skb->sk;

	if (!sk || !sk_fullsock(sk) ||
	    smp_load_acquire(&sk->sk_validate_xmit_skb) != &tls_validate_xmit_skb)
		return false;
	return rcu_access_pointer(tls_get_ctx(sk)->netdev) == dev;
}

/* True: lose this frame (the armed one, or a retransmission of it). */
static bool zc_lose(struct zc_priv *p, const struct sock *sk, const struct zc_flow *flow,
		    u32 seq, u32 end)
{
	bool drop = false, arm = false;

	if (!READ_ONCE(p->loss_active))
		return false;
	spin_lock(&p->loss_lock);
	if (p->countdown > 0)
		arm = --p->countdown == 0;
	else if (p->at_byte >= 0) /* (bytes from before the key never arm it) */
		arm = after(end, flow->start_seq) &&
		      (long long)(u32)(end - flow->start_seq) > p->at_byte;
	if (p->hold_sk) {
		if (sk == p->hold_sk && before(seq, p->hold_end) && after(end, p->hold_start)) {
			drop = true;
			zc_add(p, ZC_tx_tls_loss_held, 1);
		}
	} else if (arm) {
		p->at_byte = -1;
		p->hold_sk = sk;
		p->hold_start = seq;
		p->hold_end = end;
		drop = true;
		zc_add(p, ZC_tx_tls_loss_dropped, 1);
	}
	spin_unlock(&p->loss_lock);
	return drop;
}

/* The witness: where the frame's payload lies.  A page with a mapping
 * (folio_mapping: not anonymous, not slab) is a file's page-cache page,
 * which tls_device takes only with TLS_TX_ZEROCOPY_RO on. */
static void zc_witness(struct zc_priv *p, const struct sk_buff *skb, int headers)
{
	u64 cached = 0, other = 0;
	int i;

	if (skb_headlen(skb) > headers)
		other += skb_headlen(skb) - headers;
	for (i = 0; i < skb_shinfo(skb)->nr_frags; i++) {
		const skb_frag_t *frag = &skb_shinfo(skb)->frags[i];
		struct page *page = skb_frag_page(frag);

		if (page && folio_mapping(page_folio(page)))
			cached += skb_frag_size(frag);
		else
			other += skb_frag_size(frag);
	}
	zc_add(p, ZC_tx_tls_pagecache_bytes, cached);
	zc_add(p, ZC_tx_tls_private_bytes, other);
}

/* An offloaded socket's frame: plaintext records in, ciphertext out (or
 * NULL: dropped). */
static struct sk_buff *zc_tls_xmit(struct zc_priv *p, struct sk_buff *skb)
{
	struct zc_flow *flow = __tls_driver_ctx(tls_get_ctx(skb->sk), TLS_OFFLOAD_CTX_DIR_TX);
	int headers = skb_tcp_all_headers(skb);
	int payload = skb->len - headers;
	struct sk_buff *plain;
	u32 seq, end;
	u16 segs;

	if (payload <= 0)
		return skb; /* an ACK, SYN or FIN: nothing to encrypt */
	seq = ntohl(tcp_hdr(skb)->seq);
	end = seq + payload;
	/* (TCP sent it, lost here or not: the flow's furthest byte moves.) */
	if (before(seq, flow->next_seq))
		zc_add(p, ZC_tx_tls_ooo, 1);
	if (after(end, flow->next_seq))
		flow->next_seq = end;
	if (zc_lose(p, skb->sk, flow, seq, end)) {
		kfree_skb(skb);
		return NULL;
	}
	segs = skb_is_gso(skb) ? skb_shinfo(skb)->gso_segs : 1;
	zc_witness(p, skb, headers);
	plain = skb;
	skb = tls_encrypt_skb(skb); /* consumes the plaintext skb */
	if (!skb) {
		zc_add(p, ZC_tx_tls_drop_no_sync_data, 1);
		return NULL;
	}
	if (skb == plain)
		return skb; /* bytes from before the key: the fallback passes them */
	/* tls_device marked it "decrypted" (plaintext for the NIC); the peer
	 * must not take the ciphertext for records a NIC decrypted. */
#if IS_ENABLED(CONFIG_SKB_DECRYPTED) || \
	(LINUX_VERSION_CODE < KERNEL_VERSION(6, 10, 0) && IS_ENABLED(CONFIG_TLS_DEVICE))
	skb->decrypted = 0;
#endif
	zc_add(p, ZC_tx_tls_encrypted_packets, max_t(u16, segs, 1));
	zc_add(p, ZC_tx_tls_encrypted_bytes, payload);
	return skb;
}

static netdev_tx_t zc_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct zc_priv *p = netdev_priv(dev);
	struct net_device *peer;
	unsigned int len;

	rcu_read_lock();
	peer = rcu_dereference(p->peer);
	if (!peer) {
		kfree_skb(skb);
		zc_add(p, ZC_tx_dropped, 1);
		goto out;
	}
	if (zc_offloaded(skb, dev)) {
		skb = zc_tls_xmit(p, skb);
		if (!skb) {
			zc_add(p, ZC_tx_dropped, 1);
			goto out;
		}
	}
	len = skb->len;
	if (dev_forward_skb(peer, skb) == NET_RX_SUCCESS) {
		struct zc_priv *pp = netdev_priv(peer);

		zc_add(p, ZC_tx_packets, 1);
		zc_add(p, ZC_tx_bytes, len);
		zc_add(pp, ZC_rx_packets, 1);
		zc_add(pp, ZC_rx_bytes, len);
	} else {
		zc_add(p, ZC_tx_dropped, 1);
	}
out:
	rcu_read_unlock();
	return NETDEV_TX_OK;
}

static void zc_get_stats64(struct net_device *dev, struct rtnl_link_stats64 *s)
{
	struct zc_priv *p = netdev_priv(dev);

	s->tx_packets = atomic64_read(&p->stats[ZC_tx_packets]);
	s->tx_bytes = atomic64_read(&p->stats[ZC_tx_bytes]);
	s->tx_dropped = atomic64_read(&p->stats[ZC_tx_dropped]);
	s->rx_packets = atomic64_read(&p->stats[ZC_rx_packets]);
	s->rx_bytes = atomic64_read(&p->stats[ZC_rx_bytes]);
}

static int zc_open(struct net_device *dev)
{
	struct zc_priv *p = netdev_priv(dev);
	struct net_device *peer = rtnl_dereference(p->peer);

	if (peer && (peer->flags & IFF_UP)) {
		netif_carrier_on(dev);
		netif_carrier_on(peer);
	}
	return 0;
}

static int zc_close(struct net_device *dev)
{
	struct zc_priv *p = netdev_priv(dev);
	struct net_device *peer = rtnl_dereference(p->peer);

	netif_carrier_off(dev);
	if (peer)
		netif_carrier_off(peer);
	return 0;
}

/* Unpair, whichever way the device goes (ip link del, its namespace
 * deleted, the module unloaded): the peer then drops what it sends. */
static void zc_uninit(struct net_device *dev)
{
	struct zc_priv *p = netdev_priv(dev);
	struct net_device *peer = rtnl_dereference(p->peer);

	if (peer) {
		struct zc_priv *pp = netdev_priv(peer);

		RCU_INIT_POINTER(pp->peer, NULL);
		netif_carrier_off(peer);
	}
	RCU_INIT_POINTER(p->peer, NULL);
}

static const struct net_device_ops zc_netdev_ops = {
	.ndo_uninit = zc_uninit,
	.ndo_open = zc_open,
	.ndo_stop = zc_close,
	.ndo_start_xmit = zc_xmit,
	.ndo_get_stats64 = zc_get_stats64,
	.ndo_set_mac_address = eth_mac_addr,
};

/* tls_dev_add and tls_dev_del are mandatory for a device with a TLS
 * feature bit (tls_dev_event refuses it otherwise); resync is asked for
 * only by a driver that requests it, and for RX. */
static int zc_tls_dev_add(struct net_device *dev, struct sock *sk,
			  enum tls_offload_ctx_dir direction,
			  struct tls_crypto_info *crypto_info, u32 start_offload_tcp_sn)
{
	struct zc_flow *flow;

	if (direction != TLS_OFFLOAD_CTX_DIR_TX)
		return -EOPNOTSUPP;
	BUILD_BUG_ON(sizeof(struct zc_flow) > TLS_DRIVER_STATE_SIZE_TX);
	flow = __tls_driver_ctx(tls_get_ctx(sk), direction);
	flow->start_seq = start_offload_tcp_sn;
	flow->next_seq = start_offload_tcp_sn;
	zc_add(netdev_priv(dev), ZC_tx_tls_ctx, 1);
	return 0;
}

static void zc_tls_dev_del(struct net_device *dev, struct tls_context *ctx,
			   enum tls_offload_ctx_dir direction)
{
	if (direction == TLS_OFFLOAD_CTX_DIR_TX)
		zc_add(netdev_priv(dev), ZC_tx_tls_del, 1);
}

static int zc_tls_dev_resync(struct net_device *dev, struct sock *sk, u32 seq,
			     u8 *rcd_sn, enum tls_offload_ctx_dir direction)
{
	return 0;
}

static const struct tlsdev_ops zc_tlsdev_ops = {
	.tls_dev_add = zc_tls_dev_add,
	.tls_dev_del = zc_tls_dev_del,
	.tls_dev_resync = zc_tls_dev_resync,
};

static void zc_get_drvinfo(struct net_device *dev, struct ethtool_drvinfo *info)
{
	strscpy(info->driver, DRV_NAME, sizeof(info->driver));
}

static int zc_get_sset_count(struct net_device *dev, int sset)
{
	return sset == ETH_SS_STATS ? ZC_NSTATS : -EOPNOTSUPP;
}

static void zc_get_strings(struct net_device *dev, u32 sset, u8 *buf)
{
	if (sset == ETH_SS_STATS)
		memcpy(buf, zc_stat_names, sizeof(zc_stat_names));
}

static void zc_get_ethtool_stats(struct net_device *dev, struct ethtool_stats *stats, u64 *data)
{
	struct zc_priv *p = netdev_priv(dev);
	int i;

	for (i = 0; i < ZC_NSTATS; i++)
		data[i] = atomic64_read(&p->stats[i]);
}

static const struct ethtool_ops zc_ethtool_ops = {
	.get_drvinfo = zc_get_drvinfo,
	.get_link = ethtool_op_get_link,
	.get_sset_count = zc_get_sset_count,
	.get_strings = zc_get_strings,
	.get_ethtool_stats = zc_get_ethtool_stats,
};

static ssize_t loss_show(struct device *d, struct device_attribute *attr, char *buf)
{
	struct zc_priv *p = netdev_priv(to_net_dev(d));
	ssize_t n;

	spin_lock_bh(&p->loss_lock);
	if (p->hold_sk)
		n = sysfs_emit(buf, "holding %u+%u\n", p->hold_start, p->hold_end - p->hold_start);
	else if (p->countdown > 0)
		n = sysfs_emit(buf, "armed %ld\n", p->countdown);
	else if (p->at_byte >= 0)
		n = sysfs_emit(buf, "armed @%lld\n", p->at_byte);
	else
		n = sysfs_emit(buf, "off\n");
	spin_unlock_bh(&p->loss_lock);
	return n;
}

/* N > 0 arms (the Nth offloaded data frame from now on is lost); @B arms
 * the first frame that reaches byte B of its flow's stream since the TX
 * key; 0 releases a hold and disarms. */
static ssize_t loss_store(struct device *d, struct device_attribute *attr,
			  const char *buf, size_t len)
{
	struct zc_priv *p = netdev_priv(to_net_dev(d));
	bool at = buf[0] == '@';
	long long n;
	int err = kstrtoll(at ? buf + 1 : buf, 10, &n);

	if (err)
		return err;
	if (n < 0 || (!at && n > LONG_MAX))
		return -EINVAL;
	spin_lock_bh(&p->loss_lock);
	p->hold_sk = NULL;
	p->countdown = at ? 0 : (long)n;
	p->at_byte = at ? n : -1;
	WRITE_ONCE(p->loss_active, at || n > 0);
	spin_unlock_bh(&p->loss_lock);
	return len;
}
static DEVICE_ATTR_RW(loss);

static struct attribute *zc_attrs[] = { &dev_attr_loss.attr, NULL };
static const struct attribute_group zc_attr_group = { .name = DRV_NAME, .attrs = zc_attrs };

static void zc_setup(struct net_device *dev)
{
	struct zc_priv *p = netdev_priv(dev);

	ether_setup(dev);
	dev->priv_flags |= IFF_NO_QUEUE;
	dev->netdev_ops = &zc_netdev_ops;
	dev->ethtool_ops = &zc_ethtool_ops;
	dev->tlsdev_ops = &zc_tlsdev_ops;
	/* Scatter-gather so that frames keep their pages (the witness) and
	 * TSO so that the fallback encrypts whole bursts, as a NIC would. */
	dev->features = NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_RXCSUM | NETIF_F_HIGHDMA |
			NETIF_F_GSO_SOFTWARE | NETIF_F_HW_TLS_TX;
	dev->hw_features = dev->features; /* ethtool -K can turn each off */
	dev->needs_free_netdev = true;
	dev->sysfs_groups[0] = &zc_attr_group;
	eth_hw_addr_random(dev);
	spin_lock_init(&p->loss_lock);
	p->at_byte = -1;
}

/* Pairs with the device named by IFLA_LINK ("ip link add B link A type
 * zctlsnic"): iproute2 passes "peer ..." only for the kinds it knows. */
static int zc_pair(struct net *net, struct net_device *dev, struct nlattr *tb[],
		   struct netlink_ext_ack *extack)
{
	struct net_device *peer;
	struct zc_priv *p = netdev_priv(dev), *pp;
	int err;

	if (!tb[IFLA_LINK])
		return register_netdevice(dev);
	peer = __dev_get_by_index(net, nla_get_u32(tb[IFLA_LINK]));
	if (!peer || peer->rtnl_link_ops != dev->rtnl_link_ops) {
		NL_SET_ERR_MSG(extack, "link must name a " DRV_NAME " device");
		return -EINVAL;
	}
	pp = netdev_priv(peer);
	if (rtnl_dereference(pp->peer)) {
		NL_SET_ERR_MSG(extack, "that " DRV_NAME " device has a peer already");
		return -EBUSY;
	}
	err = register_netdevice(dev);
	if (err)
		return err;
	rcu_assign_pointer(p->peer, peer);
	rcu_assign_pointer(pp->peer, dev);
	netif_carrier_off(dev);
	if (peer->flags & IFF_UP)
		netif_carrier_on(peer);
	return 0;
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 15, 0)
static int zc_newlink(struct net_device *dev, struct rtnl_newlink_params *params,
		      struct netlink_ext_ack *extack)
{
	return zc_pair(params->link_net ? params->link_net : params->src_net, dev, params->tb,
		       extack);
}
#else
static int zc_newlink(struct net *src_net, struct net_device *dev, struct nlattr *tb[],
		      struct nlattr *data[], struct netlink_ext_ack *extack)
{
	return zc_pair(src_net, dev, tb, extack);
}
#endif

static struct rtnl_link_ops zc_link_ops __read_mostly = {
	.kind = DRV_NAME,
	.priv_size = sizeof(struct zc_priv),
	.setup = zc_setup,
	.newlink = zc_newlink,
};

static int __init zc_init(void)
{
	return rtnl_link_register(&zc_link_ops);
}

static void __exit zc_exit(void)
{
	rtnl_link_unregister(&zc_link_ops);
}

module_init(zc_init);
module_exit(zc_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("zctls bench: a device pair modelling a NIC with TLS TX offload");
MODULE_ALIAS_RTNL_LINK(DRV_NAME);
