-- One database per community node (the hub's joins with the hub service).
CREATE DATABASE node_110105001001;
CREATE DATABASE node_110105001002;
CREATE DATABASE node_110105001003;
