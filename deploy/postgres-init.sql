-- One database per service, made by the postgres image on its first start
-- (compose.yaml mounts this file); `init` then migrates each of them.
CREATE DATABASE hub;
CREATE DATABASE node_110105001001;
CREATE DATABASE node_110105001002;
CREATE DATABASE node_110105001003;
CREATE DATABASE adapter_cap;
