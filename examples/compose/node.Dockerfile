# The image of the two example nodes in docker-compose.yml (not exercised by this repo's CI): the repository on
# node:24 after `npm ci`; the service's command picks the node (`npm run start:poh-node` / `start:sending-dag`).
FROM node:24
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
