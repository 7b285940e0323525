throw new Error('react-native-webrtc is not installed: p2pbak runs on Node.js, where @libp2p/webrtc uses node-datachannel (docs/network.md §15.7)')
